import { pooledRandomBytes } from "./crypto/random-pool.js";

/** Resource kinds and the prefix their ids carry, so an id says what it is. */
export const ID_PREFIXES = {
  organization: "org",
  user: "usr",
  apiKey: "key",
  auditEvent: "aud",
  externalAgent: "agt",
  invocation: "inv",
  policy: "pol",
  delivery: "dlv",
  webhookSubscription: "whk",
  approval: "apr",
  approvalRule: "arl",
  discoveryToken: "dtk",
  agentAlertRule: "alr",
  agentAlert: "alt",
  job: "job",
} as const;

export type IdKind = keyof typeof ID_PREFIXES;

const CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz";

/**
 * A prefixed ULID in lower case: 10 characters of millisecond timestamp, then 16 of
 * randomness (80 bits), so ids sort by creation time and decode with any ULID library.
 */
export function newId(kind: IdKind, now: number = Date.now()): string {
  let time = "";
  for (let i = 0, rest = now; i < 10; i++, rest = Math.floor(rest / 32)) {
    time = CROCKFORD[rest % 32] + time;
  }
  const random = pooledRandomBytes(10);
  let randomPart = "";
  // 80 bits → 16 characters of 5 bits each, read five bytes (40 bits) at a time.
  for (let offset = 0; offset < 10; offset += 5) {
    let chunk = random.readUIntBE(offset, 5);
    let chars = "";
    for (let i = 0; i < 8; i++, chunk = Math.floor(chunk / 32)) chars = CROCKFORD[chunk % 32] + chars;
    randomPart += chars;
  }
  return `${ID_PREFIXES[kind]}_${time}${randomPart}`;
}

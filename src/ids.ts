import { randomBytes } from "node:crypto";

/** Resource kinds and the prefix their ids carry, so an id says what it is. */
export const ID_PREFIXES = {
  organization: "org",
  user: "usr",
  apiKey: "key",
  auditEvent: "aud",
  externalAgent: "agt",
} as const;

export type IdKind = keyof typeof ID_PREFIXES;

const CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz";

function encodeBase32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += CROCKFORD[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += CROCKFORD[(value << (5 - bits)) & 31];
  return out;
}

/**
 * A prefixed id whose body is a 48-bit millisecond timestamp followed by 80 random
 * bits (ULID layout, lower-case Crockford base32), so ids sort by creation time.
 */
export function newId(kind: IdKind, now: number = Date.now()): string {
  const bytes = new Uint8Array(16);
  let time = now;
  for (let i = 5; i >= 0; i--) {
    bytes[i] = time % 256;
    time = Math.floor(time / 256);
  }
  bytes.set(randomBytes(10), 6);
  return `${ID_PREFIXES[kind]}_${encodeBase32(bytes)}`;
}

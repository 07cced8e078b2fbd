import { createUser, encodeUser, fmtCreds, fromPublic, fromSeed, type KeyPair } from "@nats-io/jwt";
import { isPublishableSubject, isSubscribableSubject } from "./agent-package.js";

/**
 * NATS user credentials for one managed agent, for servers in decentralized (operator/account
 * JWT) auth mode: Steward holds an account signing seed and signs a user JWT whose permissions
 * cover only that agent's own subjects, so NATS itself stops an agent from speaking for another.
 */

/** The agent and the topics whose subjects its NATS user is scoped to. */
export interface AgentSubjects {
  agentId: string;
  subscribedTopics: string[];
  findingsTopic: string;
}

/** What an agent needs to connect: shown once at registration, never stored by Steward. */
export interface NatsUserCredentials {
  /** The standard .creds file text (user JWT + user seed, in the decorated format nats tools read). Secret: shown once. */
  creds: string;
  /** The user's public nkey (U...). */
  publicKey: string;
  expiresAt: Date;
}

/** The configured seed is not a usable account seed; the message never contains the seed. */
export class NatsAccountSeedError extends Error {
  readonly code = "nats_account_seed_invalid";
  constructor(message: string) {
    super(message);
    this.name = "NatsAccountSeedError";
  }
}

/** An agent id or topic that would grant more than the agent's own subjects. */
export class NatsSubjectError extends Error {
  readonly code = "nats_subject_invalid";
  constructor(message: string) {
    super(message);
    this.name = "NatsSubjectError";
  }
}

export interface NatsCredentialIssuerOptions {
  /**
   * The account's public key (A...) when the seed is one of the account's signing keys rather
   * than its identity key; users then carry it as `issuer_account`, without which the server
   * looks for an account named after the signing key and refuses them.
   */
  account?: string;
  clock?: () => Date;
}

/** Issues per-agent NATS users signed by one account key (its identity key or a signing key). */
export class NatsCredentialIssuer {
  /** The account's public key (A...), for operators checking the setup. */
  readonly accountPublicKey: string;
  readonly #signer: KeyPair;
  readonly #clock: () => Date;

  /** Throws NatsAccountSeedError if the seed is not an account seed (message never contains the seed). */
  constructor(accountSeed: string, options: NatsCredentialIssuerOptions = {}) {
    this.#signer = accountKeyPair(accountSeed);
    this.#clock = options.clock ?? (() => new Date());
    this.accountPublicKey =
      options.account === undefined ? this.#signer.getPublicKey() : accountKey(options.account);
  }

  /** A fresh user key pair and a user JWT limited to the agent's subjects, valid for `expiresInS` seconds. */
  async issue(subjects: AgentSubjects, expiresInS: number): Promise<NatsUserCredentials> {
    if (!Number.isInteger(expiresInS) || expiresInS <= 0) {
      throw new RangeError("expiresInS must be a positive whole number of seconds");
    }
    const { publish, subscribe } = agentSubjectPermissions(subjects);
    // JWT times are whole seconds; the server refuses the user once `exp` has passed.
    const exp = Math.floor(this.#clock().getTime() / 1000) + expiresInS;
    const user = createUser();
    const signedBySigningKey = this.accountPublicKey !== this.#signer.getPublicKey();
    const jwt = await encodeUser(
      subjects.agentId,
      user,
      signedBySigningKey ? this.accountPublicKey : this.#signer,
      // Allow lists with empty deny lists: NATS denies every subject not allowed.
      { pub: { allow: publish, deny: [] }, sub: { allow: subscribe, deny: [] } },
      signedBySigningKey ? { exp, signer: this.#signer } : { exp },
    );
    const creds = new TextDecoder().decode(fmtCreds(jwt, user));
    const publicKey = user.getPublicKey();
    // The seed now lives only in `creds`, which goes to the agent once.
    user.clear();
    return { creds, publicKey, expiresAt: new Date(exp * 1000) };
  }
}

/** The subjects the agent may publish to and subscribe to (the lead also shows these in the API and docs). */
export function agentSubjectPermissions(subjects: AgentSubjects): { publish: string[]; subscribe: string[] } {
  const { agentId, subscribedTopics, findingsTopic } = subjects;
  // A dot or wildcard in the id would widen `agents.{id}.…` to other agents' subjects.
  if (!/^[A-Za-z0-9_-]+$/.test(agentId)) {
    throw new NatsSubjectError("agent id must be one NATS subject token (letters, digits, '_' or '-')");
  }
  checkSubject(findingsTopic, agentId, false, "findings topic");
  for (const topic of subscribedTopics) checkSubject(topic, agentId, true, `subscribed topic "${topic}"`);
  const own = `agents.${agentId}`;
  return {
    publish: unique([`${own}.heartbeat`, `${own}.metrics`, `${own}.logs`, findingsTopic]),
    subscribe: unique([`${own}.control`, ...subscribedTopics, "_INBOX.>"]),
  };
}

/**
 * Refuses subjects NATS would reject and any that reach beyond the agent's own: a topic of `>`,
 * `*.…` or `agents.other.…` would let it read (or, as findings topic, write) another agent's
 * control, heartbeat or logs; `$…` subjects are NATS's own APIs (JetStream, KV, system), where a
 * publish can delete a stream; publishing into `_INBOX.…` could forge another client's reply.
 */
function checkSubject(subject: string, agentId: string, wildcards: boolean, what: string): void {
  const problem = topicProblem(subject, wildcards, agentId);
  if (problem) throw new NatsSubjectError(`${what} ${problem}`);
}

/**
 * Why an agent may not have `subject` as a subscribed (`wildcards`) or findings topic, or
 * undefined. Without `agentId` (before registration gives it one) no `agents.…` subject passes.
 */
export function topicProblem(subject: string, wildcards: boolean, agentId?: string): string | undefined {
  const valid = wildcards ? isSubscribableSubject(subject) : isPublishableSubject(subject);
  if (!valid) return `is not a valid NATS subject${wildcards ? "" : " to publish to (no wildcards)"}`;
  const [first, second] = subject.split(".");
  if (first === "*" || first === ">") return "must not start with a wildcard";
  if (first === "agents" && second !== agentId)
    return "must not reach other agents' subjects (agents.<id>.…)";
  if (first?.startsWith("$")) return "must not be a NATS system or JetStream API subject ($…)";
  if (!wildcards && first === "_INBOX") return "must not be a reply inbox (_INBOX.…)";
  return undefined;
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

function accountKey(publicKey: string): string {
  const trimmed = publicKey.trim();
  let valid = false;
  try {
    valid = trimmed.startsWith("A") && fromPublic(trimmed).getPublicKey() === trimmed;
  } catch {
    // Reported below, as any other malformed key.
  }
  if (!valid) throw new NatsAccountSeedError("NATS account must be an account public key (starting with A)");
  return trimmed;
}

function accountKeyPair(seed: string): KeyPair {
  const trimmed = seed.trim();
  // Checked before parsing so a user or operator seed gets a clear message.
  if (!trimmed.startsWith("SA")) {
    throw new NatsAccountSeedError("NATS account seed must be an account nkey seed (starting with SA)");
  }
  let pair: KeyPair;
  try {
    pair = fromSeed(new TextEncoder().encode(trimmed));
  } catch {
    // The nkeys error is dropped, not chained, so nothing derived from the seed can reach a log.
    throw new NatsAccountSeedError("NATS account seed is not a valid nkey seed");
  }
  if (!pair.getPublicKey().startsWith("A")) {
    throw new NatsAccountSeedError("NATS account seed must be an account nkey seed (starting with SA)");
  }
  return pair;
}

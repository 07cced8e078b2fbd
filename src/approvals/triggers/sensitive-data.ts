import { findCardNumbers, type Span } from "./card-number.js";

/**
 * Built-in detectors for data that should make a call need approval and must never
 * reach an approver's screen. Every pattern runs in linear time: no repeated group
 * holds a quantifier, and the alternatives of a repeated group never start with the
 * same character, so a hostile input cannot make a scan backtrack.
 */

export const SENSITIVE_KINDS = ["card_number", "us_ssn", "api_key", "password"] as const;
export type SensitiveKind = (typeof SENSITIVE_KINDS)[number];

/** How each kind is named to people: in reasons, and as the mask in redacted text. */
export const SENSITIVE_KIND_NAMES: Record<SensitiveKind, string> = {
  card_number: "card number",
  us_ssn: "SSN",
  api_key: "API key",
  password: "password",
};

export interface SensitiveMatch extends Span {
  kind: SensitiveKind;
}

/**
 * US Social Security numbers written ddd-dd-dddd. Areas 000, 666 and 900–999, group
 * 00 and serial 0000 are never issued, so they are not numbers anyone can leak. The
 * look-arounds keep it out of longer dashed numbers.
 */
const US_SSN = /(?<!\d-?)(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?!-?\d)/g;

/** Keys recognisable by their prefix; the whole match is the secret. */
const KEY_SHAPES: readonly RegExp[] = [
  // Stripe secret and restricted keys, and Steward's own API keys.
  /(?<![\w-])[sr]k_(?:live|test)_[0-9A-Za-z]{10,}/g,
  // OpenAI, Anthropic (sk-ant-…) and others that use "sk-".
  /(?<![\w-])sk-[\w-]{20,}/g,
  // GitHub personal, OAuth, user-to-server, server-to-server and refresh tokens.
  /(?<!\w)gh[pousr]_[0-9A-Za-z]{36,}/g,
  // GitHub fine-grained personal access tokens.
  /(?<!\w)github_pat_\w{22,}/g,
  // Slack bot, app, user and other tokens.
  /(?<![\w-])xox[abprs]-[0-9A-Za-z-]{10,}/g,
  // AWS access key ids, long-term and temporary.
  /(?<![0-9A-Z])(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Z])/g,
  // Google API keys.
  /(?<![\w-])AIza[\w-]{35}(?![\w-])/g,
  // JSON Web Tokens: a header and payload that are base64url JSON objects, and a signature.
  /(?<![\w-])eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}/g,
];

/**
 * Tokens known only by where they stand: after a key-like name and ":" or "=", or
 * after "Bearer". Group 1 is the secret; the name stays visible so approvers see that
 * a credential was there.
 */
const PLACED_TOKENS: readonly RegExp[] = [
  /(?:api[_-]?key|access[_-]?token|auth[_-]?token|secret[_-]?key|client[_-]?secret|token)["']?[ \t]*[:=][ \t]*["']?([\w+/=.~-]{16,})/dgi,
  /\bbearer[ \t]+([\w+/=.~-]{16,})/dgi,
];

/**
 * A password after its name and ":" or "="; quoted values may hold escaped quotes
 * (JSON), bare ones end at whitespace or a delimiter. One of groups 1–3 is the value.
 */
const PASSWORD_FIELD =
  /(?:password|passwd|pwd|secret)["']?[ \t]*[:=][ \t]*(?:"((?:[^"\\\r\n]|\\.)+)"|'((?:[^'\\\r\n]|\\.)+)'|([^\s"',;&}]+))/dgi;
/** The password in a URL's user information: scheme://user:password@host. */
const URL_PASSWORD = /:\/\/[^\s/:@]+:([^\s/@]+)@/dg;

/**
 * Below this many bits per character a placed token is more likely a placeholder
 * ("xxxxxxxxxxxxxxxx1") than a secret. Random base64 of 16 characters clears it
 * virtually always; random hex of 16 falls short about twice in a thousand.
 */
const MIN_TOKEN_ENTROPY = 2.5;

/** Sensitive data in `text`, as non-overlapping spans in order; overlapping finds are merged into the first. */
export function findSensitiveData(text: string): SensitiveMatch[] {
  const found: SensitiveMatch[] = [];
  for (const span of findCardNumbers(text)) found.push({ kind: "card_number", ...span });
  for (const match of text.matchAll(US_SSN)) found.push(whole("us_ssn", match));
  for (const shape of KEY_SHAPES) {
    for (const match of text.matchAll(shape)) found.push(whole("api_key", match));
  }
  for (const placed of PLACED_TOKENS) {
    for (const match of text.matchAll(placed)) {
      const token = captured("api_key", match);
      if (token && looksRandom(text.slice(token.start, token.end))) found.push(token);
    }
  }
  for (const field of [PASSWORD_FIELD, URL_PASSWORD]) {
    for (const match of text.matchAll(field)) {
      const value = captured("password", match);
      if (value) found.push(value);
    }
  }
  return merge(found);
}

function whole(kind: SensitiveKind, match: RegExpExecArray): SensitiveMatch {
  return { kind, start: match.index, end: match.index + match[0].length };
}

/** The first capture group that took part in the match. */
function captured(kind: SensitiveKind, match: RegExpExecArray): SensitiveMatch | null {
  const range = match.indices?.slice(1).find((indices) => indices !== undefined);
  return range ? { kind, start: range[0], end: range[1] } : null;
}

/**
 * Random tokens mix character classes — letters with digits, or both cases — which
 * names and placeholders ("your_api_key_here") rarely do; and they have enough
 * Shannon entropy per character.
 */
function looksRandom(token: string): boolean {
  const mixed = /[a-z]/i.test(token) && (/\d/.test(token) || (/[a-z]/.test(token) && /[A-Z]/.test(token)));
  if (!mixed) return false;
  const counts = new Map<string, number>();
  for (const char of token) counts.set(char, (counts.get(char) ?? 0) + 1);
  let bits = 0;
  for (const count of counts.values()) {
    const p = count / token.length;
    bits -= p * Math.log2(p);
  }
  return bits >= MIN_TOKEN_ENTROPY;
}

/**
 * Sorts by start (longer first, then detector order) and folds every overlapping
 * match into the one before it, so a masked span never leaves part of a secret.
 */
function merge(matches: SensitiveMatch[]): SensitiveMatch[] {
  const order = (kind: SensitiveKind) => SENSITIVE_KINDS.indexOf(kind);
  const sorted = matches.sort((a, b) => a.start - b.start || b.end - a.end || order(a.kind) - order(b.kind));
  const merged: SensitiveMatch[] = [];
  for (const match of sorted) {
    const last = merged.at(-1);
    if (last && match.start < last.end) last.end = Math.max(last.end, match.end);
    else merged.push({ ...match });
  }
  return merged;
}

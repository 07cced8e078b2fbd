import { createHash, randomBytes } from "node:crypto";

const KEY_PREFIX = "sk_live_";
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/** Characters of the key kept (with `sk_live_`) as its displayable prefix. */
const VISIBLE_CHARS = 4;

/** A new key: `sk_live_` and 32 base62 characters (about 190 random bits). */
export function generateApiKey(): string {
  // 248 is the largest multiple of 62 below 256: rejecting bytes above it keeps every character equally likely.
  let body = "";
  while (body.length < 32) {
    for (const byte of randomBytes(48)) {
      if (byte < 248 && body.length < 32) body += ALPHABET[byte % 62];
    }
  }
  return `${KEY_PREFIX}${body}`;
}

/** Keys are long random secrets, so a plain SHA-256 is enough to make the stored form useless. */
export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

export function displayPrefix(key: string): string {
  const start = key.startsWith(KEY_PREFIX) ? KEY_PREFIX.length : 0;
  return key.slice(0, start + VISIBLE_CHARS);
}

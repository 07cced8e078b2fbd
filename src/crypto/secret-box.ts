import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from "node:crypto";

/**
 * AES-256-GCM sealing of credentials. A sealed value names the key it was sealed
 * with (`v1.<key id>.<iv>.<tag>.<ciphertext>`), so old values stay readable after the
 * current key changes, as long as the old key is kept among the previous keys.
 */

const TAG_LENGTH = 16;

export class SecretDecryptionError extends Error {
  constructor(reason: string) {
    super(`cannot decrypt stored secret: ${reason}`);
    this.name = "SecretDecryptionError";
  }
}

export class InvalidEncryptionKeyError extends Error {
  constructor() {
    super("an encryption key must be 32 bytes, given as 64 hex characters or base64");
    this.name = "InvalidEncryptionKeyError";
  }
}

/** Parses a 32-byte key given as 64 hex characters or as (url-safe) base64. */
export function parseEncryptionKey(text: string): Buffer {
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, "hex");
  // Buffer's base64 decoder skips characters it does not know; refuse them instead.
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) throw new InvalidEncryptionKeyError();
  const key = Buffer.from(text, "base64");
  if (key.length !== 32) throw new InvalidEncryptionKeyError();
  return key;
}

/** A short, stable, non-secret identifier of a key. */
export function keyIdOf(key: Buffer): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 8);
}

export class SecretBox {
  readonly currentKeyId: string;
  private readonly keys: Map<string, Buffer>;

  constructor(currentKey: Buffer, previousKeys: Buffer[] = []) {
    this.currentKeyId = keyIdOf(currentKey);
    this.keys = new Map(previousKeys.map((key) => [keyIdOf(key), key]));
    this.keys.set(this.currentKeyId, currentKey);
  }

  /** Encrypts `plaintext`; `context` is bound as associated data and must match on open. */
  seal(plaintext: string, context: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.keyFor(this.currentKeyId), iv);
    cipher.setAAD(Buffer.from(context));
    const ciphertext = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    const parts = [iv, cipher.getAuthTag(), ciphertext].map((part) => part.toString("base64url"));
    return ["v1", this.currentKeyId, ...parts].join(".");
  }

  open(sealed: string, context: string): string {
    const parts = sealed.split(".");
    const [version, keyId, iv, tag, ciphertext] = parts;
    if (parts.length !== 5 || version !== "v1" || !keyId || !iv || !tag || ciphertext === undefined) {
      throw new SecretDecryptionError("unrecognised format");
    }
    try {
      // A fixed tag length: otherwise GCM accepts a truncated tag, and forgeries get cheap.
      const decipher = createDecipheriv("aes-256-gcm", this.keyFor(keyId), Buffer.from(iv, "base64url"), {
        authTagLength: TAG_LENGTH,
      });
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(Buffer.from(tag, "base64url"));
      return Buffer.concat([
        decipher.update(Buffer.from(ciphertext, "base64url")),
        decipher.final(),
      ]).toString("utf8");
    } catch (error) {
      if (error instanceof SecretDecryptionError) throw error;
      throw new SecretDecryptionError("authentication failed (wrong key or tampered data)");
    }
  }

  /**
   * A key for another purpose (signing agent tokens, say) derived from the key `keyId`
   * with HKDF, so one configured secret serves every use without reusing key material.
   */
  derivedKey(purpose: string, keyId: string = this.currentKeyId): Buffer {
    return Buffer.from(hkdfSync("sha256", this.keyFor(keyId), Buffer.alloc(0), `steward:${purpose}`, 32));
  }

  private keyFor(keyId: string): Buffer {
    const key = this.keys.get(keyId);
    if (!key) throw new SecretDecryptionError(`unknown key id ${keyId}`);
    return key;
  }
}

import { Webhook } from "standardwebhooks";

/**
 * The Standard Webhooks signer for an agent's hmac secret: a `whsec_` secret carries
 * base64 key bytes; any other string is used as its UTF-8 bytes. Throws when a `whsec_`
 * secret's key is not base64.
 */
export function webhookSigner(secret: string): Webhook {
  return secret.startsWith("whsec_")
    ? new Webhook(secret)
    : new Webhook(Buffer.from(secret, "utf8"), { format: "raw" });
}

/** Why `secret` cannot sign, in words that never quote it; undefined when it can. */
export function signingSecretProblem(secret: string): string | undefined {
  try {
    webhookSigner(secret);
    return undefined;
  } catch {
    return "is not a valid whsec_ secret: the part after whsec_ must be base64";
  }
}

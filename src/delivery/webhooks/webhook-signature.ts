import { Webhook } from "standardwebhooks";

/** What a Standard Webhooks receiver reads to verify a message. */
export interface StandardWebhookHeaders {
  "webhook-id": string;
  /** Unix time in seconds. */
  "webhook-timestamp": string;
  /** One or more `v1,<base64 HMAC-SHA256>` entries, space separated. */
  "webhook-signature": string;
}

/**
 * The Standard Webhooks headers of one delivery attempt. Every secret adds its own
 * `v1,<signature>` entry to webhook-signature, space separated, which the spec allows so
 * that a receiver holding either secret of a rotation accepts the message.
 *
 * Subscription secrets are always `whsec_` secrets Steward generated, so the raw-string
 * form agents' hmac secrets may take (src/invocation/outbound-auth.ts) does not arise.
 */
export function standardWebhookHeaders(
  messageId: string,
  timestamp: Date,
  body: string,
  secrets: readonly string[],
): StandardWebhookHeaders {
  return {
    "webhook-id": messageId,
    "webhook-timestamp": String(Math.floor(timestamp.getTime() / 1000)),
    "webhook-signature": secrets
      .map((secret) => new Webhook(secret).sign(messageId, timestamp, body))
      .join(" "),
  };
}

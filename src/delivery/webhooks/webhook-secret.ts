import { randomBytes } from "node:crypto";
import {
  isSealedSecret,
  maskOf,
  type SealedSecret,
  sealSecrets,
  secretContext,
} from "../../agents/credentials.js";
import { type SecretBox, SecretDecryptionError } from "../../crypto/secret-box.js";
import type { WebhookSubscriptionRow } from "../../db/schema.js";

/**
 * A subscription's signing secrets, sealed at rest like agent credentials. The sealing
 * context is the subscription id, so a sealed value copied onto another subscription
 * does not open; the current and previous secret share it, so a rotation moves the
 * sealed value between columns without unsealing it.
 */

const SECTION = "webhook_subscription";
const SECRET_PATHS = ["secret"] as const;

/** A Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes (the HMAC-SHA256 key). */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString("base64")}`;
}

/** The secret as the `secret` and `previous_secret` columns hold it. */
export function sealWebhookSecret(box: SecretBox, subscriptionId: string, secret: string): SealedSecret {
  const sealed = sealSecrets({ secret }, SECRET_PATHS, box, { agentId: subscriptionId, section: SECTION });
  return storedSecret(sealed.secret);
}

/** The stored form, or an error: a column that holds anything else was not written by Steward. */
function storedSecret(value: unknown): SealedSecret {
  if (!isSealedSecret(value)) throw new SecretDecryptionError("the webhook secret is not a sealed value");
  return value;
}

/** What responses show instead of the secret: `****abcd`. */
export function maskedWebhookSecret(row: Pick<WebhookSubscriptionRow, "secret">): string {
  return maskOf(storedSecret(row.secret));
}

function openWebhookSecret(box: SecretBox, subscriptionId: string, stored: unknown): string {
  return box.open(storedSecret(stored).$sealed, secretContext(subscriptionId, SECTION, "secret"));
}

/** Whether a rotation's previous secret still signs at `now` (milliseconds since the epoch). */
export function previousSecretActive(
  row: Pick<WebhookSubscriptionRow, "previousSecret" | "previousSecretUntil">,
  now: number,
): boolean {
  return (
    row.previousSecret !== null && row.previousSecretUntil !== null && row.previousSecretUntil.getTime() > now
  );
}

/** The plaintext secrets that sign at `now`: the current one, then the previous during an overlap. */
export function signingSecrets(
  box: SecretBox,
  row: Pick<WebhookSubscriptionRow, "id" | "secret" | "previousSecret" | "previousSecretUntil">,
  now: number,
): string[] {
  const secrets = [openWebhookSecret(box, row.id, row.secret)];
  if (previousSecretActive(row, now)) secrets.push(openWebhookSecret(box, row.id, row.previousSecret));
  return secrets;
}

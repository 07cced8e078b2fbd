import type { WebhookSubscriptionRow } from "../../db/schema.js";
import type { WebhookSubscription } from "./webhook.schemas.js";
import type { WebhookEventType } from "./webhook-events.js";
import { maskedWebhookSecret, previousSecretActive } from "./webhook-secret.js";

/**
 * The API representation of a stored subscription. The secret is masked unless
 * `revealedSecret` is given, which only the create and rotate-secret responses do.
 */
export function toWebhookView(
  row: WebhookSubscriptionRow,
  now: number,
  revealedSecret?: string,
): WebhookSubscription {
  return {
    id: row.id,
    organization_id: row.organizationId,
    url: row.url,
    events: row.events as WebhookEventType[],
    description: row.description,
    active: row.active,
    secret: revealedSecret ?? maskedWebhookSecret(row),
    previous_secret_expires_at:
      previousSecretActive(row, now) && row.previousSecretUntil
        ? row.previousSecretUntil.toISOString()
        : null,
    created_by: row.createdBy,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

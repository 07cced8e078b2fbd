import { and, eq } from "drizzle-orm";
import { type SecretBox, SecretDecryptionError } from "../../crypto/secret-box.js";
import type { Db } from "../../db/database.js";
import { type DeliveryRow, webhookSubscriptions } from "../../db/schema.js";
import type { DeliveryOutcome, DeliveryPayload, HttpSender } from "../adapters/adapter.js";
import type { DeliveryTarget, PreparedDelivery } from "../delivery-target.js";
import { outcomeOf } from "../http-outcome.js";
import { signingSecrets } from "./webhook-secret.js";
import { standardWebhookHeaders } from "./webhook-signature.js";

const DELETED = "the webhook subscription was deleted";

/** Any 2xx is delivered; 408, 429 and 5xx are retried, honouring Retry-After. */
async function deliverWebhook(
  payload: DeliveryPayload,
  send: HttpSender,
  timeoutMs: number,
): Promise<DeliveryOutcome> {
  return outcomeOf(await send(payload, timeoutMs));
}

/**
 * Sends an event delivery to its subscription's URL, signed per Standard Webhooks. Runs
 * at every attempt, so the subscription's current URL and secrets are used and the
 * signature's timestamp is fresh (receivers refuse ones older than five minutes).
 */
export class WebhookDeliveryTarget implements DeliveryTarget {
  constructor(
    private readonly db: Db,
    private readonly box: SecretBox,
    private readonly now: () => number = Date.now,
  ) {}

  async prepare(delivery: DeliveryRow): Promise<PreparedDelivery | { skip: string }> {
    // A deleted subscription lets go of its deliveries (see WebhookService.delete).
    if (delivery.subscriptionId === null) return { skip: DELETED };
    const [subscription] = await this.db
      .select()
      .from(webhookSubscriptions)
      .where(
        and(
          eq(webhookSubscriptions.id, delivery.subscriptionId),
          eq(webhookSubscriptions.organizationId, delivery.organizationId),
        ),
      );
    if (!subscription) return { skip: DELETED };
    if (!subscription.active) return { skip: "the webhook subscription is inactive" };
    if (delivery.payload === null) return { skip: "the delivery has no event to send" };

    const now = this.now();
    let secrets: string[];
    try {
      secrets = signingSecrets(this.box, subscription, now);
    } catch (error) {
      // Retrying cannot help until an operator restores the encryption key.
      if (error instanceof SecretDecryptionError) return { skip: `cannot sign: ${error.message}` };
      throw error;
    }
    const body = JSON.stringify(delivery.payload);
    return {
      payload: {
        url: subscription.url,
        headers: {
          "content-type": "application/json",
          ...standardWebhookHeaders(delivery.id, new Date(now), body, secrets),
        },
        body,
      },
      deliver: deliverWebhook,
    };
  }
}

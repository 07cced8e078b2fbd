import { sql } from "drizzle-orm";
import type { DeliveryRow } from "../db/schema.js";

/**
 * A delivery's endpoint — the agent's platform, a webhook subscription, or one call's
 * callback URL — paused and capped as one. deliveries_parked_idx (migration 0011) indexes
 * this very expression: a change here needs a migration rebuilding that index.
 */
export const ENDPOINT_KEY = sql`CASE target WHEN 'platform' THEN 'agent:' || external_agent_id
  WHEN 'webhook' THEN 'webhook:' || subscription_id ELSE 'callback:' || invocation_id END`;

/** ENDPOINT_KEY of a webhook subscription's deliveries. */
export const webhookEndpoint = (subscriptionId: string | null) => `webhook:${subscriptionId}`;

/** ENDPOINT_KEY of a delivery in hand. */
export function endpointOf(
  delivery: Pick<DeliveryRow, "target" | "externalAgentId" | "subscriptionId" | "invocationId">,
): string {
  if (delivery.target === "platform") return `agent:${delivery.externalAgentId}`;
  if (delivery.target === "webhook") return webhookEndpoint(delivery.subscriptionId);
  return `callback:${delivery.invocationId}`;
}

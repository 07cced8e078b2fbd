import { sql } from "drizzle-orm";
import type { DbOrTx } from "../../db/database.js";
import { newId } from "../../ids.js";
import type { EventOutbox, OutboxEvent } from "../delivery-target.js";

/** An active subscription, as the outbox needs it. */
export interface ActiveSubscription {
  id: string;
  events: readonly string[];
}

/**
 * An organization's active subscriptions, read with `db` (the publisher's transaction:
 * the embedded database has a single connection, which that transaction holds).
 */
export interface ActiveSubscriptionSource {
  activeSubscriptions(db: DbOrTx, organizationId: string): Promise<readonly ActiveSubscription[]>;
}

/** The body every webhook delivery carries; `data` depends on `type` (docs/webhooks.md). */
export interface WebhookEventPayload extends Record<string, unknown> {
  type: OutboxEvent["type"];
  timestamp: string;
  data: Record<string, unknown>;
}

/**
 * Queues one webhook delivery per active subscription of the event's organization that
 * lists its type, inside the publisher's transaction so the deliveries commit (or not)
 * with the change they report.
 */
export class WebhookEventOutbox implements EventOutbox {
  constructor(
    private readonly subscriptions: ActiveSubscriptionSource,
    private readonly now: () => number = Date.now,
  ) {}

  async publish(tx: DbOrTx, event: OutboxEvent): Promise<boolean> {
    const candidates = (await this.subscriptions.activeSubscriptions(tx, event.organizationId)).filter(
      (subscription) => subscription.events.includes(event.type),
    );
    // The common case, no subscriber, costs no query beyond the (cached) lookup.
    if (candidates.length === 0) return false;

    const payload: WebhookEventPayload = {
      type: event.type,
      timestamp: new Date(this.now()).toISOString(),
      data: event.data,
    };
    const rows = candidates.map((subscription) => sql`(${newId("delivery")}, ${subscription.id})`);
    // The candidates come from a cache that may be up to its TTL old, so the insert takes
    // only subscriptions that still exist, are active and list the type. FOR KEY SHARE
    // makes a concurrent delete either wait for this transaction (and then cancel the new
    // rows) or, having committed first, drop the subscription from this insert: a
    // deleted subscription never fails the publisher's transaction with a foreign-key error.
    const queued = await tx.execute(sql`
      INSERT INTO deliveries
             (id, organization_id, target, event_type, external_agent_id, invocation_id, subscription_id, payload)
      SELECT queued.id, s.organization_id, 'webhook', ${event.type}, ${event.externalAgentId ?? null},
             ${event.invocationId ?? null}, s.id, ${JSON.stringify(payload)}::jsonb
        FROM (VALUES ${sql.join(rows, sql`, `)}) AS queued (id, subscription_id)
        JOIN webhook_subscriptions s ON s.id = queued.subscription_id
       WHERE s.organization_id = ${event.organizationId}
         AND s.active
         AND ${event.type} = ANY (s.events)
         FOR KEY SHARE OF s`);
    return (queued.rowCount ?? 0) > 0;
  }
}

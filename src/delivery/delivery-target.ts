import type { DbOrTx } from "../db/database.js";
import type { DeliveryRow } from "../db/schema.js";
import type { DeliveryOutcome, DeliveryPayload, HttpSender } from "./adapters/adapter.js";

/** A claimed delivery made ready to send. */
export interface PreparedDelivery {
  payload: DeliveryPayload;
  deliver(payload: DeliveryPayload, send: HttpSender, timeoutMs: number): Promise<DeliveryOutcome>;
}

/**
 * Where deliveries of one kind go: the agent's chat platform, or an organization's
 * webhook subscription. `prepare` reads what it needs (and unseals credentials) at
 * send time; `{ skip }` ends a delivery that can no longer be sent (its subscription
 * was deleted, its agent has no destination any more) with that reason.
 */
export interface DeliveryTarget {
  prepare(delivery: DeliveryRow): Promise<PreparedDelivery | { skip: string }>;
}

/** An event for organization webhook subscriptions. */
export interface OutboxEvent {
  type:
    | "external_agent.invocation.completed"
    | "external_agent.budget.warning"
    | "external_agent.rate_limit.exceeded"
    | "approval.requested"
    | "approval.approved"
    | "approval.rejected"
    | "approval.expired"
    | "approval.escalated"
    | "managed_agent.status_changed"
    | "managed_agent.alert";
  organizationId: string;
  externalAgentId?: string;
  invocationId?: string;
  data: Record<string, unknown>;
}

/** Writes event deliveries into the outbox inside the caller's transaction, so they commit with it. */
export interface EventOutbox {
  /** Answers whether any delivery was queued, so the publisher knows to wake a worker. */
  publish(tx: DbOrTx, event: OutboxEvent): Promise<boolean>;
}

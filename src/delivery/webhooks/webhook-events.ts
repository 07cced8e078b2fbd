import type { OutboxEvent } from "../delivery-target.js";

/**
 * The events an organization can subscribe to: exactly the outbox's event types (a unit
 * test fails to compile when the two drift apart).
 */
export const WEBHOOK_EVENT_TYPES = [
  "external_agent.invocation.completed",
  "external_agent.budget.warning",
  "external_agent.rate_limit.exceeded",
  "approval.requested",
  "approval.approved",
  "approval.rejected",
  "approval.expired",
  "approval.escalated",
  "managed_agent.status_changed",
  "managed_agent.alert",
] as const satisfies readonly OutboxEvent["type"][];

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

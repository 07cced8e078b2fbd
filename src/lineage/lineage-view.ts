import Type, { type Static } from "typebox";
import type { InvocationRow } from "../db/schema.js";
import { Nullable } from "../http/openapi.js";

/** One invocation as the API shows it: the five identity layers and what happened. */

const Text = Nullable(Type.String());
const Json = Type.Unknown();

export const LineageRecord = Type.Object({
  invocation_id: Type.String({ description: "inv_…" }),
  organization_id: Type.String(),
  status: Type.String(),
  external_user: Type.Object({ id: Text, email: Text, name: Text, role: Text }),
  external_system: Type.Object({ system: Text, session_id: Text, trace_id: Text, context: Json }),
  credential: Type.Object({
    type: Type.String({ description: "api_key or jwt" }),
    id: Type.String(),
    api_key_prefix: Text,
    organization_id: Type.String(),
    team: Text,
  }),
  agent: Type.Object({
    id: Type.String(),
    name: Type.String(),
    endpoint: Type.String(),
    version: Type.Integer(),
  }),
  trace: Type.Object({
    trace_id: Type.String(),
    span_id: Type.String(),
    parent_span_id: Text,
    parent_invocation_id: Text,
  }),
  request: Type.Object({ ip: Text, user_agent: Text, body: Json }),
  response: Type.Object({ status: Nullable(Type.Integer()), body: Json }),
  error: Text,
  duration_ms: Nullable(Type.Integer()),
  estimated_cost: Type.Number(),
  cost_usd: Nullable(Type.Number()),
  degraded: Type.Boolean(),
  degraded_reasons: Type.Array(Type.String()),
  governance: Type.Record(Type.String(), Type.Unknown()),
  policy_ids: Type.Array(Type.String()),
  created_at: Type.String({ format: "date-time" }),
  completed_at: Nullable(Type.String({ format: "date-time" })),
  chain: Type.Object({ seq: Nullable(Type.Integer()), prev_hash: Text, record_hash: Text }),
  redacted_at: Nullable(Type.String({ format: "date-time" })),
  webhook_delivery_status: Nullable(
    Type.String({
      description: "Delivery of the result to the agent's platform: pending, delivered, failed, dead",
    }),
  ),
  webhook_delivery_error: Text,
  webhook_delivered_at: Nullable(Type.String({ format: "date-time" })),
});
export type LineageRecord = Static<typeof LineageRecord>;

export function toLineageRecord(row: InvocationRow): LineageRecord {
  return {
    invocation_id: row.id,
    organization_id: row.organizationId,
    status: row.status,
    external_user: {
      id: row.externalUserId,
      email: row.externalUserEmail,
      name: row.externalUserName,
      role: row.externalUserRole,
    },
    external_system: {
      system: row.externalSystem,
      session_id: row.externalSessionId,
      trace_id: row.externalTraceId,
      context: row.externalContext,
    },
    credential: {
      type: row.principalType,
      id: row.principalId,
      api_key_prefix: row.apiKeyPrefix,
      organization_id: row.organizationId,
      team: row.team,
    },
    agent: {
      id: row.externalAgentId,
      name: row.agentName,
      endpoint: row.agentEndpoint,
      version: row.agentVersion,
    },
    trace: {
      trace_id: row.traceId,
      span_id: row.spanId,
      parent_span_id: row.parentSpanId,
      parent_invocation_id: row.parentInvocationId,
    },
    request: { ip: row.requestIp, user_agent: row.userAgent, body: row.requestBody },
    response: { status: row.responseStatus, body: row.responseBody },
    error: row.errorMessage,
    duration_ms: row.durationMs,
    estimated_cost: row.estimatedCost,
    cost_usd: row.costUsd,
    degraded: row.degraded,
    degraded_reasons: row.degradedReasons,
    governance: row.governance,
    policy_ids: row.policyIds,
    created_at: row.createdAt.toISOString(),
    completed_at: row.completedAt?.toISOString() ?? null,
    chain: { seq: row.chainSeq, prev_hash: row.prevHash, record_hash: row.recordHash },
    redacted_at: row.redactedAt?.toISOString() ?? null,
    webhook_delivery_status: row.webhookDeliveryStatus,
    webhook_delivery_error: row.webhookDeliveryError,
    webhook_delivered_at: row.webhookDeliveredAt?.toISOString() ?? null,
  };
}

import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { and, eq } from "drizzle-orm";
import Type from "typebox";
import { AgentIdParams } from "../agents/agent.schemas.js";
import type { ExternalAgentService } from "../agents/agent.service.js";
import type { DeliveryAttemptRow, DeliveryRow } from "../db/schema.js";
import { deliveries } from "../db/schema.js";
import { API_SECURITY, errorResponses, Nullable } from "../http/openapi.js";
import { PageQuery, Paginated, pageRequest, toPage } from "../http/pagination.js";
import type { DeliveryStore } from "./delivery-store.js";

const tags = ["Deliveries"];
const STATUSES = ["pending", "delivering", "delivered", "failed", "dead"] as const;

const Delivery = Type.Object({
  id: Type.String({ description: "dlv_… — sent as X-Steward-Delivery-Id on every attempt" }),
  target: Type.String({ description: "platform or webhook" }),
  event_type: Type.String(),
  external_agent_id: Nullable(Type.String()),
  invocation_id: Nullable(Type.String()),
  subscription_id: Nullable(Type.String()),
  platform: Nullable(Type.String()),
  status: Type.Enum(STATUSES, {
    description: "pending → delivering → delivered, or failed (retrying) → dead (gave up)",
  }),
  attempts: Type.Integer({ description: "Attempts in the current round" }),
  next_attempt_at: Type.String({ format: "date-time" }),
  last_status_code: Nullable(Type.Integer()),
  last_error: Nullable(Type.String()),
  created_at: Type.String({ format: "date-time" }),
  delivered_at: Nullable(Type.String({ format: "date-time" })),
});

const Attempt = Type.Object({
  attempt: Type.Integer(),
  started_at: Type.String({ format: "date-time" }),
  duration_ms: Type.Integer(),
  status_code: Nullable(Type.Integer()),
  outcome: Type.String({ description: "delivered, retry or failed" }),
  error: Nullable(Type.String()),
});

function toDelivery(row: DeliveryRow) {
  return {
    id: row.id,
    target: row.target,
    event_type: row.eventType,
    external_agent_id: row.externalAgentId,
    invocation_id: row.invocationId,
    subscription_id: row.subscriptionId,
    platform: row.platform,
    status: row.status as (typeof STATUSES)[number],
    attempts: row.attempts,
    next_attempt_at: row.nextAttemptAt.toISOString(),
    last_status_code: row.lastStatusCode,
    last_error: row.lastError,
    created_at: row.createdAt.toISOString(),
    delivered_at: row.deliveredAt?.toISOString() ?? null,
  };
}

function toAttempt(row: DeliveryAttemptRow) {
  return {
    attempt: row.attempt,
    started_at: row.startedAt.toISOString(),
    duration_ms: row.durationMs,
    status_code: row.statusCode,
    outcome: row.outcome,
    error: row.error,
  };
}

export function deliveryRoutes(
  store: DeliveryStore,
  agents: ExternalAgentService,
  wake: () => void,
): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      "/deliveries",
      {
        config: { permission: "external_agents:read" },
        schema: {
          summary: "Deliveries to chat platforms and webhook subscribers, newest first",
          tags,
          security: API_SECURITY,
          querystring: Type.Object(
            {
              ...PageQuery,
              external_agent_id: Type.Optional(Type.String()),
              status: Type.Optional(Type.Enum(STATUSES)),
              platform: Type.Optional(Type.String()),
              from: Type.Optional(Type.String({ format: "date-time" })),
              to: Type.Optional(Type.String({ format: "date-time" })),
            },
            { additionalProperties: false },
          ),
          response: { 200: Paginated(Delivery), ...errorResponses(400, 401, 403) },
        },
      },
      async (request) => {
        const { external_agent_id, status, platform, from, to } = request.query;
        const page = pageRequest(request.query);
        const { rows, total } = await store.list(
          request.principal.organizationId,
          {
            externalAgentId: external_agent_id,
            status,
            platform,
            from: from ? new Date(from) : undefined,
            to: to ? new Date(to) : undefined,
          },
          page,
        );
        return toPage(rows.map(toDelivery), total, page);
      },
    );

    app.get(
      "/deliveries/:id",
      {
        config: { permission: "external_agents:read" },
        schema: {
          summary: "One delivery with every attempt",
          tags,
          security: API_SECURITY,
          params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }),
          response: {
            200: Type.Object({ ...Delivery.properties, attempt_log: Type.Array(Attempt) }),
            ...errorResponses(401, 403, 404),
          },
        },
      },
      async (request) => {
        const { delivery, attempts } = await store.get(request.principal.organizationId, request.params.id);
        return { ...toDelivery(delivery), attempt_log: attempts.map(toAttempt) };
      },
    );

    app.post(
      "/deliveries/:id/redeliver",
      {
        config: { permission: "external_agents:update" },
        schema: {
          summary: "Queue a delivery again with a fresh set of attempts (and resume its endpoint if paused)",
          tags,
          security: API_SECURITY,
          params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }),
          response: { 202: Delivery, ...errorResponses(401, 403, 404) },
        },
      },
      async (request, reply) => {
        const organizationId = request.principal.organizationId;
        await store.get(organizationId, request.params.id);
        await store.requeue(organizationId, eq(deliveries.id, request.params.id));
        wake();
        const { delivery } = await store.get(organizationId, request.params.id);
        return reply.status(202).send(toDelivery(delivery));
      },
    );

    app.post(
      "/external-agents/:id/deliveries/replay",
      {
        config: { permission: "external_agents:update" },
        schema: {
          summary: "Queue an agent's deliveries in one status again (e.g. every dead one)",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          querystring: Type.Object(
            { status: Type.Enum(["dead", "failed"], { default: "dead" }) },
            { additionalProperties: false },
          ),
          response: { 202: Type.Object({ requeued: Type.Integer() }), ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request, reply) => {
        const organizationId = request.principal.organizationId;
        const agent = await agents.get(organizationId, request.params.id);
        const requeued = await store.requeue(
          organizationId,
          and(
            eq(deliveries.externalAgentId, agent.id),
            eq(deliveries.status, request.query.status ?? "dead"),
          ),
        );
        wake();
        return reply.status(202).send({ requeued });
      },
    );
  };
}

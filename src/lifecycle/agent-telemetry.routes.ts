import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { ValidationError } from "../errors.js";
import { API_SECURITY, errorResponses } from "../http/openapi.js";
import { pageRequest } from "../http/pagination.js";
import type { AgentHealthService } from "./agent-health.service.js";
import {
  AgentHealth,
  HeartbeatBody,
  LogPage,
  LogsBody,
  LogsQuery,
  logEntriesOf,
  MetricSeries,
  MetricsBody,
  MetricsQuery,
} from "./agent-telemetry.schemas.js";
import { AgentIdParams } from "./managed-agent.schemas.js";
import type { ManagedAgentService } from "./managed-agent.service.js";
import type { TelemetryStore } from "./telemetry-store.js";

const tags = ["Managed agents"];
const Accepted = Type.Object({ accepted: Type.Literal(true) });
const DEFAULT_METRICS_WINDOW_MS = 3_600_000;
/** A query may ask for at most this many buckets per series. */
const MAX_BUCKETS = 10_000;

/** Heartbeats, metrics and logs of managed agents over HTTP (the same as on NATS), and their queries. */
export function agentTelemetryRoutes(
  agents: ManagedAgentService,
  health: AgentHealthService,
  telemetry: TelemetryStore,
): FastifyPluginAsyncTypebox {
  return async (app) => {
    const report = (summary: string, body: typeof HeartbeatBody | typeof MetricsBody | typeof LogsBody) => ({
      // Metrics and logs are the agent's own text, stored cleaned (see TelemetryStore).
      config: { permission: "agents:update" as const, passesAnyText: body !== HeartbeatBody },
      schema: {
        summary,
        tags,
        security: API_SECURITY,
        params: AgentIdParams,
        body,
        response: { 202: Accepted, ...errorResponses(400, 401, 403, 404) },
      },
    });

    app.post("/agents/:id/heartbeat", report("Report a heartbeat", HeartbeatBody), async (request, reply) => {
      const body = request.body as HeartbeatBody;
      if (body.agent_id !== undefined && body.agent_id !== request.params.id)
        throw new ValidationError([{ field: "agent_id", message: "must be the agent of the URL" }]);
      const agent = await agents.load(request.principal.organizationId, request.params.id);
      await health.heartbeat(agent, body);
      return reply.status(202).send({ accepted: true });
    });

    app.post("/agents/:id/metrics", report("Report metrics", MetricsBody), async (request, reply) => {
      const agent = await agents.load(request.principal.organizationId, request.params.id);
      await health.recordMetrics(agent, request.body as MetricsBody);
      return reply.status(202).send({ accepted: true });
    });

    app.post("/agents/:id/logs", report("Report log entries", LogsBody), async (request, reply) => {
      const agent = await agents.load(request.principal.organizationId, request.params.id);
      await health.recordLogs(agent, logEntriesOf(request.body as LogsBody));
      return reply.status(202).send({ accepted: true });
    });

    app.get(
      "/agents/:id/health",
      {
        config: { permission: "agents:read" },
        schema: {
          summary: "State, health, last heartbeat, latest metrics and open alerts",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          response: { 200: AgentHealth, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => health.health(request.principal.organizationId, request.params.id),
    );

    app.get(
      "/agents/:id/metrics",
      {
        config: { permission: "agents:read" },
        schema: {
          summary: "Metrics aggregated into buckets of `step` seconds",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          querystring: MetricsQuery,
          response: { 200: MetricSeries, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => {
        const { organizationId } = request.principal;
        await agents.get(organizationId, request.params.id);
        const to = request.query.to ? new Date(request.query.to) : new Date();
        const from = request.query.from
          ? new Date(request.query.from)
          : new Date(to.getTime() - DEFAULT_METRICS_WINDOW_MS);
        const step = request.query.step ?? 60;
        if (from >= to) throw new ValidationError([{ field: "from", message: "must be before to" }]);
        if ((to.getTime() - from.getTime()) / 1000 / step > MAX_BUCKETS)
          throw new ValidationError([
            { field: "step", message: `too small for the range: at most ${MAX_BUCKETS} buckets` },
          ]);
        const series = await telemetry.metricSeries(organizationId, request.params.id, {
          name: request.query.name,
          from,
          to,
          stepS: step,
        });
        return { from: from.toISOString(), to: to.toISOString(), step, series };
      },
    );

    app.get(
      "/agents/:id/logs",
      {
        config: { permission: "agents:read" },
        schema: {
          summary: "Log entries, newest first",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          querystring: LogsQuery,
          response: { 200: LogPage, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => {
        const { organizationId } = request.principal;
        await agents.get(organizationId, request.params.id);
        const { level, q, from, to } = request.query;
        return telemetry.logs(
          organizationId,
          request.params.id,
          { minLevel: level, q, from: from ? new Date(from) : undefined, to: to ? new Date(to) : undefined },
          pageRequest(request.query),
        );
      },
    );
  };
}

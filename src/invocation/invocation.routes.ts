import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { AgentIdParams } from "../agents/agent.schemas.js";
import type { ExternalAgentService } from "../agents/agent.service.js";
import { httpUrlProblem } from "../agents/http-url.js";
import { ValidationError } from "../errors.js";
import { API_SECURITY, errorResponses } from "../http/openapi.js";
import { PageQuery, Paginated, pageRequest, toPage } from "../http/pagination.js";
import type { LineageService } from "../lineage/lineage.service.js";
import { LineageRecord, toLineageRecord } from "../lineage/lineage-view.js";
import { readCallerIdentity } from "./caller-identity.js";
import type { InvocationService } from "./invocation.service.js";
import { answerFor } from "./invocation-response.js";

const tags = ["Invocations"];

const InvokeBody = Type.Object(
  {
    input: Type.String({ minLength: 1, description: "What the agent is asked" }),
    context: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: "Passed to the agent; `environment` here is what environment policies see",
      }),
    ),
    metadata: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), { description: "Passed to the agent" }),
    ),
    callback_url: Type.Optional(
      Type.String({
        maxLength: 2048,
        description: "For a call that waits for approval: where its result is POSTed once it ends",
      }),
    ),
  },
  { additionalProperties: false },
);

const InvokeResult = Type.Object({
  invocation_id: Type.String(),
  trace_id: Type.String(),
  status: Type.String(),
  output: Type.Unknown(),
  cost_usd: Type.Number(),
  duration_ms: Type.Integer(),
  metadata: Type.Record(Type.String(), Type.Unknown()),
});

const PendingApproval = Type.Object({
  invocation_id: Type.String(),
  approval_id: Type.Optional(Type.String()),
  status: Type.Literal("pending_approval"),
  reasons: Type.Array(Type.String()),
  expires_at: Type.Optional(Type.String({ format: "date-time" })),
});

const InvokeHeaders = Type.Object({
  "idempotency-key": Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      description: "A retried call with the same key returns the first result",
    }),
  ),
  traceparent: Type.Optional(Type.String({ description: "W3C trace context to continue" })),
  "x-external-user-id": Type.Optional(Type.String()),
  "x-external-user-email": Type.Optional(Type.String()),
  "x-external-user-name": Type.Optional(Type.String()),
  "x-external-user-role": Type.Optional(Type.String()),
  "x-external-system": Type.Optional(Type.String()),
  "x-external-session-id": Type.Optional(Type.String()),
  "x-external-trace-id": Type.Optional(Type.String()),
  "x-external-context": Type.Optional(Type.String({ description: "A JSON object" })),
});

const InvocationsQuery = Type.Object(
  {
    ...PageQuery,
    status: Type.Optional(Type.String()),
    external_user: Type.Optional(Type.String({ description: "External user id or email" })),
    from: Type.Optional(Type.String({ format: "date-time" })),
    to: Type.Optional(Type.String({ format: "date-time" })),
  },
  { additionalProperties: false },
);

export function invocationRoutes(
  invocationService: InvocationService,
  agents: ExternalAgentService,
  lineage: LineageService,
): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/external-agents/:id/invoke",
      {
        config: { permission: "external_agents:invoke", passesAnyText: true },
        schema: {
          summary: "Invoke an external agent through governance",
          description:
            "Policy, rate limit, budget and approval are checked in that order; every call, allowed or not, is recorded in lineage.",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          headers: InvokeHeaders,
          body: InvokeBody,
          response: {
            200: InvokeResult,
            202: PendingApproval,
            ...errorResponses(400, 401, 402, 403, 404, 409, 413, 429, 502, 503, 504),
          },
        },
      },
      async (request, reply) => {
        const { identity, errors } = readCallerIdentity(request.headers);
        const callbackProblem = request.body.callback_url ? httpUrlProblem(request.body.callback_url) : null;
        if (callbackProblem) errors.push({ field: "callback_url", message: callbackProblem });
        if (errors.length > 0) throw new ValidationError(errors);
        const row = await invocationService.invoke({
          principal: request.principal,
          agentId: request.params.id,
          body: request.body,
          identity,
          traceparent: request.headers.traceparent,
          idempotencyKey: request.headers["idempotency-key"],
          ip: request.ip,
          userAgent: request.headers["user-agent"],
          requestId: String(request.id),
        });
        const answer = answerFor(row);
        reply.headers(answer.headers);
        if ("error" in answer) throw answer.error;
        return answer.statusCode === 200
          ? reply.status(200).send(answer.body)
          : reply.status(202).send(answer.body);
      },
    );

    app.get(
      "/external-agents/:id/invocations",
      {
        config: { permission: "lineage:read" },
        schema: {
          summary: "An agent's invocations, newest first",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          querystring: InvocationsQuery,
          response: { 200: Paginated(LineageRecord), ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => {
        const organizationId = request.principal.organizationId;
        await agents.get(organizationId, request.params.id);
        const { status, external_user, from, to } = request.query;
        const page = pageRequest(request.query);
        const { rows, total } = await lineage.list(
          organizationId,
          {
            externalAgentId: request.params.id,
            status,
            externalUser: external_user,
            from: from ? new Date(from) : undefined,
            to: to ? new Date(to) : undefined,
          },
          page,
        );
        return toPage(rows.map(toLineageRecord), total, page);
      },
    );

    app.get(
      "/invocations/:id",
      {
        config: { permission: "lineage:read" },
        schema: {
          summary: "One invocation",
          tags,
          security: API_SECURITY,
          params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }),
          response: { 200: LineageRecord, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) =>
        toLineageRecord(await lineage.get(request.principal.organizationId, request.params.id)),
    );
  };
}

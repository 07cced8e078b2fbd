import { Readable } from "node:stream";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { requestContext } from "../auth/access-control.js";
import { AppError } from "../errors.js";
import { API_SECURITY, errorResponses } from "../http/openapi.js";
import { PageQuery, Paginated, pageRequest, toPage } from "../http/pagination.js";
import type { LineageFilters, LineageService } from "./lineage.service.js";
import { EXPORT_CONTENT_TYPES, exportRecords } from "./lineage-export.js";
import { LineageRecord, toLineageRecord } from "./lineage-view.js";

const tags = ["Lineage"];

const FilterQuery = {
  external_user_id: Type.Optional(Type.String()),
  external_user_email: Type.Optional(Type.String()),
  external_system: Type.Optional(Type.String()),
  external_agent_id: Type.Optional(Type.String()),
  trace_id: Type.Optional(Type.String({ description: "Every record of one trace" })),
  status: Type.Optional(Type.String()),
  from: Type.Optional(Type.String({ format: "date-time" })),
  to: Type.Optional(Type.String({ format: "date-time" })),
};

type FilterParams = { [K in keyof typeof FilterQuery]?: string };

function filtersOf(query: FilterParams): LineageFilters {
  return {
    externalUserId: query.external_user_id,
    externalUserEmail: query.external_user_email,
    externalSystem: query.external_system,
    externalAgentId: query.external_agent_id,
    traceId: query.trace_id,
    status: query.status,
    from: query.from ? new Date(query.from) : undefined,
    to: query.to ? new Date(query.to) : undefined,
  };
}

const SubjectParams = Type.Object({
  subject: Type.String({ minLength: 1, maxLength: 512, description: "External user id or email" }),
});

const Verification = Type.Object({
  valid: Type.Boolean(),
  checked: Type.Integer({ description: "Records verified before the first broken one, or all of them" }),
  first_broken: Type.Union([
    Type.Object({
      invocation_id: Type.Union([Type.String(), Type.Null()]),
      chain_seq: Type.Integer(),
      reason: Type.String(),
    }),
    Type.Null(),
  ]),
});

const Graph = Type.Object({
  nodes: Type.Array(Type.Object({ id: Type.String(), type: Type.String(), label: Type.String() })),
  edges: Type.Array(
    Type.Object({
      from: Type.String(),
      to: Type.String(),
      invocations: Type.Integer(),
      cost_usd: Type.Number(),
      duration_ms: Type.Integer(),
    }),
  ),
});

export function lineageRoutes(lineage: LineageService): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      "/lineage",
      {
        config: { permission: "lineage:read" },
        schema: {
          summary: "Search invocation records",
          tags,
          security: API_SECURITY,
          querystring: Type.Object({ ...PageQuery, ...FilterQuery }, { additionalProperties: false }),
          response: { 200: Paginated(LineageRecord), ...errorResponses(400, 401, 403) },
        },
      },
      async (request) => {
        const page = pageRequest(request.query);
        const { rows, total } = await lineage.list(
          request.principal.organizationId,
          filtersOf(request.query),
          page,
        );
        return toPage(rows.map(toLineageRecord), total, page);
      },
    );

    app.get(
      "/lineage/verify",
      {
        config: { permission: "lineage:read" },
        schema: {
          summary: "Verify the organization's hash chain and name the first broken record",
          tags,
          security: API_SECURITY,
          response: { 200: Verification, ...errorResponses(401, 403) },
        },
      },
      async (request) => lineage.verify(request.principal.organizationId),
    );

    app.get(
      "/lineage/graph",
      {
        config: { permission: "lineage:read" },
        schema: {
          summary: "The call chain of an agent or a trace as nodes and edges",
          tags,
          security: API_SECURITY,
          querystring: Type.Object(
            { external_agent_id: Type.Optional(Type.String()), trace_id: Type.Optional(Type.String()) },
            { additionalProperties: false },
          ),
          response: { 200: Graph, ...errorResponses(400, 401, 403) },
        },
      },
      async (request) => {
        const { external_agent_id, trace_id } = request.query;
        if (!external_agent_id && !trace_id) {
          throw new AppError("VALIDATION_ERROR", "Give external_agent_id or trace_id", {
            errors: [{ field: "trace_id", message: "external_agent_id or trace_id is required" }],
          });
        }
        return lineage.graph(request.principal.organizationId, {
          externalAgentId: external_agent_id,
          traceId: trace_id,
        });
      },
    );

    app.get(
      "/lineage/export",
      {
        config: { permission: "lineage:export" },
        schema: {
          summary: "Export records as JSON, JSON Lines or CSV (streamed)",
          tags,
          security: API_SECURITY,
          querystring: Type.Object(
            { format: Type.Optional(Type.Enum(["json", "jsonl", "csv"])), ...FilterQuery },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => {
        const format = request.query.format ?? "json";
        const rows = lineage.iterate(request.principal.organizationId, filtersOf(request.query));
        return reply
          .type(EXPORT_CONTENT_TYPES[format])
          .header("content-disposition", `attachment; filename="lineage.${format}"`)
          .send(Readable.from(exportRecords(rows, format)));
      },
    );

    app.get(
      "/lineage/users/:subject/export",
      {
        config: { permission: "gdpr:redact" },
        schema: {
          summary: "Everything held about one external user (GDPR Art. 15)",
          tags,
          security: API_SECURITY,
          params: SubjectParams,
          response: {
            200: Type.Object({ subject: Type.String(), records: Type.Array(LineageRecord) }),
            ...errorResponses(401, 403),
          },
        },
      },
      async (request) => {
        const rows = await lineage.forSubject(request.principal.organizationId, request.params.subject);
        return { subject: request.params.subject, records: rows.map(toLineageRecord) };
      },
    );

    app.delete(
      "/lineage/users/:subject",
      {
        config: { permission: "gdpr:redact" },
        schema: {
          summary: "Erase one external user's identity and bodies (GDPR Art. 17); records and chain remain",
          tags,
          security: API_SECURITY,
          params: SubjectParams,
          response: { 200: Type.Object({ redacted: Type.Integer() }), ...errorResponses(401, 403) },
        },
      },
      async (request) => ({
        redacted: await lineage.redactSubject(
          request.principal.organizationId,
          request.params.subject,
          requestContext(request),
        ),
      }),
    );

    app.get(
      "/lineage/:invocation_id",
      {
        config: { permission: "lineage:read" },
        schema: {
          summary: "One invocation record",
          tags,
          security: API_SECURITY,
          params: Type.Object({ invocation_id: Type.String({ minLength: 1, maxLength: 64 }) }),
          response: { 200: LineageRecord, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) =>
        toLineageRecord(await lineage.get(request.principal.organizationId, request.params.invocation_id)),
    );
  };
}

import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import type { RequestContext } from "../audit/audit.js";
import { requestContext } from "../auth/access-control.js";
import { AppError } from "../errors.js";
import { API_SECURITY, errorResponses, Nullable } from "../http/openapi.js";
import { PageQuery, pageRequest } from "../http/pagination.js";
import type { AgentDiscovery } from "./agent-discovery.js";
import type { AgentProcesses } from "./agent-processes.js";
import {
  AgentIdParams,
  AgentToken,
  DiscoveryToken,
  DiscoveryTokenBody,
  ListAgentsQuery,
  ManagedAgent,
  ManagedAgentPage,
  RegisterAgentBody,
  Registration,
  StatusBody,
  TransitionPage,
} from "./managed-agent.schemas.js";
import type { ManagedAgentService } from "./managed-agent.service.js";

const tags = ["Managed agents"];

const DiscoveryReport = Type.Object({
  directory: Type.String(),
  directory_missing: Type.Boolean(),
  scanned_at: Type.String({ format: "date-time" }),
  agents: Type.Array(
    Type.Object({
      id: Type.String(),
      name: Type.String(),
      version: Type.String(),
      file: Type.String(),
      created: Type.Boolean(),
    }),
  ),
  problems: Type.Array(Type.Object({ file: Type.String(), reason: Type.String() })),
});

const ProcessState = Type.Object({
  pid: Nullable(Type.Integer()),
  started_at: Nullable(Type.String({ format: "date-time" })),
  restarts: Type.Integer(),
  state: Type.String(),
});

/** Registry, discovery, lifecycle and credentials of managed agents: /api/v1/agents. */
export function managedAgentRoutes(
  agents: ManagedAgentService,
  discovery: AgentDiscovery,
  processes: AgentProcesses,
): FastifyPluginAsyncTypebox {
  /** However it is asked for, a deletion stops the agent's process first: nothing could stop it after. */
  async function deleteAgent(
    organizationId: string,
    id: string,
    reason: string | null,
    context: RequestContext,
  ) {
    await processes.stopProcess(organizationId, id);
    return agents.transition(organizationId, id, "deleted", reason, context);
  }

  return async (app) => {
    app.get(
      "/agents",
      {
        config: { permission: "agents:read" },
        schema: {
          summary: "List managed agents",
          tags,
          security: API_SECURITY,
          querystring: ListAgentsQuery,
          response: { 200: ManagedAgentPage, ...errorResponses(400, 401, 403) },
        },
      },
      async (request) =>
        agents.list(request.principal.organizationId, request.query, pageRequest(request.query)),
    );

    app.post(
      "/agents",
      {
        config: { permission: "agents:manage" },
        schema: {
          summary: "Register a managed agent",
          description:
            "Either `{agent_id}` of a discovered agent, or a definition (name, version, description, subscribed_topics, findings_topic, …). Answers the agent and its credentials: a short-lived token and, when Steward issues NATS users, a .creds file. Both are shown once.",
          tags,
          security: API_SECURITY,
          body: RegisterAgentBody,
          response: { 201: Registration, ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async (request, reply) =>
        reply
          .status(201)
          .send(
            await agents.register(request.principal.organizationId, request.body, requestContext(request)),
          ),
    );

    app.post(
      "/agents/discover",
      {
        config: { permission: "agents:manage" },
        schema: {
          summary: "Scan the agents directory now",
          description:
            "Valid packages become `discovered` agents of the caller's organization; the report lists the refused ones.",
          tags,
          security: API_SECURITY,
          response: { 200: DiscoveryReport, ...errorResponses(401, 403) },
        },
      },
      async (request) => discovery.scan(request.principal.organizationId, requestContext(request)),
    );

    app.get(
      "/agents/discovery-report",
      {
        config: { permission: "agents:read" },
        schema: {
          summary: "The organization's last discovery scan",
          tags,
          security: API_SECURITY,
          response: { 200: DiscoveryReport, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => {
        const report = await discovery.report(request.principal.organizationId);
        if (!report) throw new AppError("NOT_FOUND", "No discovery scan has run for this organization yet");
        return report;
      },
    );

    app.post(
      "/agents/discovery-tokens",
      {
        config: { permission: "agents:manage" },
        schema: {
          summary: "Create a one-time discovery token",
          description:
            "An agent registers itself with it at POST /api/v1/agents/register; single use, short expiry.",
          tags,
          security: API_SECURITY,
          body: DiscoveryTokenBody,
          response: { 201: DiscoveryToken, ...errorResponses(400, 401, 403) },
        },
        // Every field is optional, so a bare POST (no body at all) means "the defaults";
        // a JSON null is a body, and the schema refuses it.
        preValidation: async (request) => {
          if (request.body === undefined) request.body = {};
        },
      },
      async (request, reply) =>
        reply
          .status(201)
          .send(
            await agents.createDiscoveryToken(
              request.principal.organizationId,
              request.body.ttl_s,
              requestContext(request),
            ),
          ),
    );

    app.get(
      "/agents/:id",
      {
        config: { permission: "agents:read" },
        schema: {
          summary: "Read a managed agent",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          response: { 200: ManagedAgent, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => agents.get(request.principal.organizationId, request.params.id),
    );

    app.delete(
      "/agents/:id",
      {
        config: { permission: "agents:manage" },
        schema: {
          summary: "Delete a managed agent (its process is stopped, its history kept)",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          response: { 204: Type.Null(), ...errorResponses(401, 403, 404) },
        },
      },
      async (request, reply) => {
        await deleteAgent(request.principal.organizationId, request.params.id, null, requestContext(request));
        return reply.status(204).send(null);
      },
    );

    app.put(
      "/agents/:id/status",
      {
        config: { permission: "agents:update" },
        schema: {
          summary: "Change an agent's lifecycle state",
          description:
            "Allowed: discovered→registered→running, running→stopped, stopped→running, running→failed, failed→running, any→deleted. Others answer 409 with the allowed ones in `details.allowed`.",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          body: StatusBody,
          response: { 200: ManagedAgent, ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async (request) => {
        const { status, reason = null } = request.body;
        if (status === "deleted") {
          if (request.principal.agentId !== undefined)
            throw new AppError("FORBIDDEN", "Forbidden: an agent cannot delete itself; an admin can");
          return deleteAgent(
            request.principal.organizationId,
            request.params.id,
            reason,
            requestContext(request),
          );
        }
        return agents.transition(
          request.principal.organizationId,
          request.params.id,
          status,
          reason,
          requestContext(request),
        );
      },
    );

    app.get(
      "/agents/:id/status/history",
      {
        config: { permission: "agents:read" },
        schema: {
          summary: "Every state change of the agent, oldest first",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          querystring: Type.Object(PageQuery),
          response: { 200: TransitionPage, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) =>
        agents.history(request.principal.organizationId, request.params.id, pageRequest(request.query)),
    );

    app.post(
      "/agents/:id/token",
      {
        config: { permission: "agents:update" },
        schema: {
          summary: "Issue a fresh agent token (refresh)",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          response: { 200: AgentToken, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => agents.issueToken(request.principal.organizationId, request.params.id),
    );

    app.delete(
      "/agents/:id/token",
      {
        config: { permission: "agents:manage" },
        schema: {
          summary: "Revoke every token issued to the agent",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          response: { 204: Type.Null(), ...errorResponses(401, 403, 404) },
        },
      },
      async (request, reply) => {
        await agents.revokeTokens(
          request.principal.organizationId,
          request.params.id,
          requestContext(request),
        );
        return reply.status(204).send(null);
      },
    );

    for (const action of ["start", "stop", "restart"] as const) {
      app.post(
        `/agents/:id/${action}`,
        {
          config: { permission: "agents:manage" },
          schema: {
            summary: `${action[0]?.toUpperCase()}${action.slice(1)} the agent's local process`,
            description:
              "For agents discovered from a package with AGENT_COMMAND. Stop sends SIGTERM, then SIGKILL after the grace period.",
            tags,
            security: API_SECURITY,
            params: AgentIdParams,
            response: {
              200: Type.Object({ agent: ManagedAgent, process: Nullable(ProcessState) }),
              ...errorResponses(401, 403, 404, 409),
            },
          },
        },
        async (request) => {
          const { organizationId } = request.principal;
          const { id } = request.params;
          await processes[action](organizationId, id, requestContext(request));
          return { agent: await agents.get(organizationId, id), process: processes.status(id) };
        },
      );
    }

    app.get(
      "/agents/:id/process",
      {
        config: { permission: "agents:read" },
        schema: {
          summary: "The agent's local process, if this Steward runs it",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          response: {
            200: Type.Object({ process: Nullable(ProcessState) }),
            ...errorResponses(401, 403, 404),
          },
        },
      },
      async (request) => {
        await agents.get(request.principal.organizationId, request.params.id);
        return { process: processes.status(request.params.id) };
      },
    );
  };
}

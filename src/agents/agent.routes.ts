import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { requestContext } from "../auth/access-control.js";
import { API_SECURITY, errorResponses } from "../http/openapi.js";
import { pageRequest } from "../http/pagination.js";
import {
  Agent,
  AgentIdParams,
  AgentList,
  CreateAgentBody,
  ListAgentsQuery,
  UpdateAgentBody,
} from "./agent.schemas.js";
import type { ExternalAgentService } from "./agent.service.js";

const tags = ["External agents"];

export function externalAgentRoutes(agents: ExternalAgentService): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/external-agents",
      {
        config: { permission: "external_agents:create" },
        schema: {
          summary: "Register an external agent",
          tags,
          security: API_SECURITY,
          body: CreateAgentBody,
          response: { 201: Agent, ...errorResponses(400, 401, 403, 409, 413) },
        },
      },
      async (request, reply) => {
        const agent = await agents.create(
          request.principal.organizationId,
          request.body,
          requestContext(request),
        );
        return reply.status(201).send(agent);
      },
    );

    app.get(
      "/external-agents",
      {
        config: { permission: "external_agents:read" },
        schema: {
          summary: "List the organization's external agents",
          tags,
          security: API_SECURITY,
          querystring: ListAgentsQuery,
          response: { 200: AgentList, ...errorResponses(400, 401, 403) },
        },
      },
      async (request) => {
        const { platform, status, tag, search } = request.query;
        return agents.list(
          request.principal.organizationId,
          { platform, status, tag, search },
          pageRequest(request.query),
        );
      },
    );

    app.get(
      "/external-agents/:id",
      {
        config: { permission: "external_agents:read" },
        schema: {
          summary: "Read one external agent (credentials masked)",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          response: { 200: Agent, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => agents.get(request.principal.organizationId, request.params.id),
    );

    app.patch(
      "/external-agents/:id",
      {
        config: { permission: "external_agents:update" },
        schema: {
          summary: "Change an external agent (any field but platform)",
          description:
            "Configs are re-validated against the agent's auth type and platform. A masked secret sent back unchanged keeps the stored credential.",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          body: UpdateAgentBody,
          response: { 200: Agent, ...errorResponses(400, 401, 403, 404, 409, 413) },
        },
      },
      async (request) =>
        agents.update(
          request.principal.organizationId,
          request.params.id,
          request.body,
          requestContext(request),
        ),
    );

    app.delete(
      "/external-agents/:id",
      {
        config: { permission: "external_agents:delete" },
        schema: {
          summary: "Delete an external agent (soft: the record stays with status deleted)",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          response: { 204: Type.Null({ description: "Deleted" }), ...errorResponses(401, 403, 404) },
        },
      },
      async (request, reply) => {
        await agents.delete(request.principal.organizationId, request.params.id, requestContext(request));
        return reply.status(204).send(null);
      },
    );
  };
}

import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { Agent, AgentIdParams } from "../agents/agent.schemas.js";
import { requestContext } from "../auth/access-control.js";
import { API_SECURITY, errorResponses } from "../http/openapi.js";
import { AgentCardRecord, ImportAgentBody } from "./a2a-import.schemas.js";
import type { A2aImportService } from "./a2a-import.service.js";

const tags = ["External agents"];

/** POST /api/v1/external-agents/import and the card history of A2A agents. */
export function a2aImportRoutes(imports: A2aImportService): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/external-agents/import",
      {
        config: { permission: "external_agents:create" },
        schema: {
          summary: "Register an A2A agent from its Agent Card, or refresh one registered before",
          description:
            "Fetches the card (through the SSRF guard) from card_url, or takes it inline as card. A card whose JSON-RPC endpoint an agent already has refreshes that agent (200); otherwise a new agent with platform a2a is created (201). Secrets the card's security schemes call for go in auth_config.",
          tags,
          security: API_SECURITY,
          body: ImportAgentBody,
          response: { 200: Agent, 201: Agent, ...errorResponses(400, 401, 403, 409, 413) },
        },
      },
      async (request, reply) => {
        const { agent, created } = await imports.import(
          request.principal.organizationId,
          request.body,
          requestContext(request),
        );
        return reply.status(created ? 201 : 200).send(agent);
      },
    );

    app.get(
      "/external-agents/:id/cards",
      {
        config: { permission: "external_agents:read" },
        schema: {
          summary: "The Agent Cards an A2A agent was imported from, newest first",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          response: {
            200: Type.Object({ items: Type.Array(AgentCardRecord) }),
            ...errorResponses(401, 403, 404),
          },
        },
      },
      async (request) => {
        const rows = await imports.history(request.principal.organizationId, request.params.id);
        return {
          items: rows.map((row) => ({
            fetched_at: row.fetchedAt.toISOString(),
            source_url: row.sourceUrl,
            card: row.card,
          })),
        };
      },
    );
  };
}

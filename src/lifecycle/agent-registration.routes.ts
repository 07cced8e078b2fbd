import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { errorResponses } from "../http/openapi.js";
import { Registration, SelfRegisterBody } from "./managed-agent.schemas.js";
import type { ManagedAgentService } from "./managed-agent.service.js";

/**
 * POST /api/v1/agents/register: an agent registers itself with a one-time discovery
 * token in the body. It sits outside the API-key access control: the token is the
 * credential, and it names the organization.
 */
export function agentRegistrationRoutes(agents: ManagedAgentService): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/agents/register",
      {
        schema: {
          summary: "Self-registration of an agent with a discovery token",
          description:
            "The body is the agent's definition plus `discovery_token` (from POST /api/v1/agents/discovery-tokens; single use). A discovered agent of the same name and version is registered; otherwise a new one is created.",
          tags: ["Managed agents"],
          body: SelfRegisterBody,
          response: { 201: Registration, ...errorResponses(400, 401, 409) },
        },
      },
      async (request, reply) => reply.status(201).send(await agents.selfRegister(request.body)),
    );
  };
}

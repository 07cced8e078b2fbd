import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { requestContext } from "../auth/access-control.js";
import { API_SECURITY, errorResponses } from "../http/openapi.js";
import { PageQuery, pageRequest } from "../http/pagination.js";
import {
  AgentAlertPage,
  AgentAlertRule,
  AgentAlertRuleBody,
  AgentAlertRulePage,
  AlertQuery,
} from "./agent-alert.schemas.js";
import type { AgentAlertService } from "./agent-alert.service.js";

const tags = ["Managed agents"];

/** Alert rules over managed agents, and the alerts that fired. */
export function agentAlertRoutes(alerts: AgentAlertService): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/agents/alert-rules",
      {
        config: { permission: "agents:manage" },
        schema: {
          summary: "Create an alert rule",
          tags,
          security: API_SECURITY,
          body: AgentAlertRuleBody,
          response: { 201: AgentAlertRule, ...errorResponses(400, 401, 403, 409) },
        },
      },
      async (request, reply) =>
        reply
          .status(201)
          .send(
            await alerts.createRule(request.principal.organizationId, request.body, requestContext(request)),
          ),
    );

    app.get(
      "/agents/alert-rules",
      {
        config: { permission: "agents:read" },
        schema: {
          summary: "List alert rules",
          tags,
          security: API_SECURITY,
          querystring: Type.Object(PageQuery),
          response: { 200: AgentAlertRulePage, ...errorResponses(400, 401, 403) },
        },
      },
      async (request) => alerts.listRules(request.principal.organizationId, pageRequest(request.query)),
    );

    app.delete(
      "/agents/alert-rules/:ruleId",
      {
        config: { permission: "agents:manage" },
        schema: {
          summary: "Delete an alert rule (its alerts stay in the history)",
          tags,
          security: API_SECURITY,
          params: Type.Object({ ruleId: Type.String({ minLength: 1, maxLength: 64 }) }),
          response: { 204: Type.Null(), ...errorResponses(401, 403, 404) },
        },
      },
      async (request, reply) => {
        await alerts.deleteRule(
          request.principal.organizationId,
          request.params.ruleId,
          requestContext(request),
        );
        return reply.status(204).send(null);
      },
    );

    app.get(
      "/agents/alerts",
      {
        config: { permission: "agents:read" },
        schema: {
          summary: "Alerts over managed agents, newest first",
          tags,
          security: API_SECURITY,
          querystring: AlertQuery,
          response: { 200: AgentAlertPage, ...errorResponses(400, 401, 403) },
        },
      },
      async (request) =>
        alerts.list(
          request.principal.organizationId,
          { agentId: request.query.agent_id, open: request.query.open },
          pageRequest(request.query),
        ),
    );
  };
}

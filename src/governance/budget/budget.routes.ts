import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { AgentIdParams } from "../../agents/agent.schemas.js";
import type { ExternalAgentService } from "../../agents/agent.service.js";
import { BudgetConfig } from "../../agents/governance-config.js";
import { requestContext } from "../../auth/access-control.js";
import { API_SECURITY, errorResponses } from "../../http/openapi.js";
import type { GovernanceSettingsService } from "../settings/governance-settings.service.js";
import type { BudgetService, PeriodUsage } from "./budget.service.js";

const tags = ["Budgets"];

/** One period of spend against its caps, as budget and governance-status answers show it. */
export const BudgetUsage = Type.Object({
  period: Type.String(),
  period_start: Type.String({ format: "date" }),
  reset_at: Type.String({ format: "date-time" }),
  cost_used: Type.Number(),
  reserved: Type.Number({ description: "Estimated cost of calls in flight" }),
  invocations: Type.Integer(),
  limit: Type.Union([Type.Number(), Type.Null()]),
  remaining: Type.Union([Type.Number(), Type.Null()]),
  execution_limit: Type.Union([Type.Integer(), Type.Null()]),
  usage_percentage: Type.Union([Type.Number(), Type.Null()]),
  warning: Type.Boolean({ description: "At or over the warning threshold" }),
  degraded: Type.Boolean({ description: "At or over the degradation threshold" }),
  limit_reached: Type.Boolean(),
});

const BudgetStatus = Type.Object({
  scope: Type.String({ description: "agent or organization" }),
  scope_id: Type.String(),
  budget_config: BudgetConfig,
  monthly: BudgetUsage,
  daily: BudgetUsage,
});

function statusOf(scope: string, scopeId: string, config: BudgetConfig, usage: PeriodUsage[]) {
  const [daily, monthly] = usage as [PeriodUsage, PeriodUsage];
  return { scope, scope_id: scopeId, budget_config: config, monthly, daily };
}

export function budgetRoutes(
  budgets: BudgetService,
  agents: ExternalAgentService,
  settings: GovernanceSettingsService,
): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      "/external-agents/:id/budget",
      {
        config: { permission: "external_agents:read" },
        schema: {
          summary: "An agent's spend this UTC day and month against its caps",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          response: { 200: BudgetStatus, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => {
        const agent = await agents.get(request.principal.organizationId, request.params.id);
        const usage = await budgets.usage("agent", agent.id, agent.budget_config, new Date());
        return statusOf("agent", agent.id, agent.budget_config, usage);
      },
    );

    app.patch(
      "/external-agents/:id/budget/config",
      {
        config: { permission: "external_agents:update" },
        schema: {
          summary: "Change some of an agent's budget settings (merged into the current ones)",
          tags,
          security: API_SECURITY,
          params: AgentIdParams,
          body: BudgetConfig,
          response: { 200: BudgetStatus, ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async (request) => {
        const organizationId = request.principal.organizationId;
        const current = await agents.get(organizationId, request.params.id);
        const agent = await agents.update(
          organizationId,
          current.id,
          { budget_config: { ...current.budget_config, ...request.body } },
          requestContext(request),
        );
        const usage = await budgets.usage("agent", agent.id, agent.budget_config, new Date());
        return statusOf("agent", agent.id, agent.budget_config, usage);
      },
    );

    app.get(
      "/governance/budget",
      {
        config: { permission: "external_agents:read" },
        schema: {
          summary: "The organization's spend across all its agents against its caps",
          tags,
          security: API_SECURITY,
          response: { 200: BudgetStatus, ...errorResponses(401, 403) },
        },
      },
      async (request) => {
        const organizationId = request.principal.organizationId;
        const config = (await settings.get(organizationId)).budget_config;
        const usage = await budgets.usage("organization", organizationId, config, new Date());
        return statusOf("organization", organizationId, config, usage);
      },
    );
  };
}

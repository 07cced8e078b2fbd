import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { and, count, eq } from "drizzle-orm";
import Type from "typebox";
import { AgentIdParams } from "../agents/agent.schemas.js";
import type { ExternalAgentService } from "../agents/agent.service.js";
import type { RateLimitConfig } from "../agents/governance-config.js";
import type { Db } from "../db/database.js";
import { invocations } from "../db/schema.js";
import { API_SECURITY, errorResponses } from "../http/openapi.js";
import { BudgetUsage } from "./budget/budget.routes.js";
import type { BudgetService } from "./budget/budget.service.js";
import type { PolicyService } from "./policies/policy.service.js";
import { limitSpecsFor } from "./rate-limit/limit-specs.js";
import {
  type RateLimiter,
  RateLimiterUnavailableError,
  type WindowState,
} from "./rate-limit/rate-limiter.js";
import type { GovernanceSettingsService } from "./settings/governance-settings.service.js";

const GovernanceStatus = Type.Object({
  external_agent_id: Type.String(),
  budget: Type.Object({ agent: Type.Array(BudgetUsage), organization: Type.Array(BudgetUsage) }),
  rate_limits: Type.Object({
    available: Type.Boolean({ description: "False when the rate-limit store could not be read" }),
    windows: Type.Array(
      Type.Object({
        window: Type.String(),
        limit: Type.Integer(),
        used: Type.Integer(),
        remaining: Type.Integer(),
        reset_seconds: Type.Integer(),
      }),
    ),
  }),
  policies: Type.Object({
    combining: Type.String(),
    applicable: Type.Array(
      Type.Object({
        id: Type.String(),
        name: Type.String(),
        effect: Type.String(),
        priority: Type.Integer(),
      }),
    ),
  }),
  pending_approvals: Type.Integer(),
  degraded: Type.Object({ budget: Type.Boolean(), rate_limiter: Type.Boolean() }),
});

export interface GovernanceStatusDependencies {
  db: Db;
  agents: ExternalAgentService;
  budgets: BudgetService;
  limiter: RateLimiter;
  policies: PolicyService;
  settings: GovernanceSettingsService;
}

/** Everything that would decide an agent's next call, on one page. */
export function governanceStatusRoutes(deps: GovernanceStatusDependencies): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      "/external-agents/:id/governance-status",
      {
        config: { permission: "external_agents:read" },
        schema: {
          summary: "Budget, rate-limit windows, applicable policies and pending approvals of an agent",
          tags: ["Governance"],
          security: API_SECURITY,
          params: AgentIdParams,
          response: { 200: GovernanceStatus, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => {
        const organizationId = request.principal.organizationId;
        const agent = await deps.agents.get(organizationId, request.params.id);
        const settings = await deps.settings.get(organizationId);
        const now = new Date();
        const [agentUsage, organizationUsage, policies, [pending]] = await Promise.all([
          deps.budgets.usage("agent", agent.id, agent.budget_config, now),
          deps.budgets.usage("organization", organizationId, settings.budget_config, now),
          deps.policies.listForEvaluation(organizationId),
          deps.db
            .select({ total: count() })
            .from(invocations)
            .where(
              and(eq(invocations.externalAgentId, agent.id), eq(invocations.status, "pending_approval")),
            ),
        ]);
        const specs = limitSpecsFor(
          agent.id,
          agent.rate_limit_config as RateLimitConfig,
          settings.rate_limit_defaults,
          undefined,
        );
        let windows: WindowState[] = [];
        let available = true;
        try {
          windows = await deps.limiter.inspect(specs, now.getTime());
        } catch (error) {
          if (!(error instanceof RateLimiterUnavailableError)) throw error;
          available = false;
        }
        return {
          external_agent_id: agent.id,
          budget: { agent: agentUsage, organization: organizationUsage },
          rate_limits: {
            available,
            windows: windows.map((state) => ({
              window: state.window,
              limit: state.limit,
              used: state.used,
              remaining: state.remaining,
              reset_seconds: state.resetSeconds,
            })),
          },
          policies: {
            combining: settings.policy_combining,
            applicable: policies
              .filter((policy) => policy.enabled)
              .map((policy) => ({
                id: policy.id,
                name: policy.name,
                effect: policy.effect,
                priority: policy.priority,
              })),
          },
          pending_approvals: pending?.total ?? 0,
          degraded: {
            budget: [...agentUsage, ...organizationUsage].some((usage) => usage.degraded),
            rate_limiter: !available,
          },
        };
      },
    );
  };
}

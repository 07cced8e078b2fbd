/**
 * The API's answers that more than one screen reads, declared once here; a shape only one
 * screen reads stays beside that screen. They mirror the routes under src/governance/.
 */

/** An agent's or the organization's budget settings (`budget_config`). */
export interface BudgetConfig {
  max_cost_per_invocation?: number;
  max_daily_cost?: number;
  max_monthly_cost?: number;
  cost_per_execution?: number;
  currency?: string;
  warning_threshold?: number;
  degradation_threshold?: number;
  enforcement_mode?: "hard" | "soft";
  monthly_execution_limit?: number;
}

/** One period of spend against its caps (BudgetUsage). */
export interface BudgetUsage {
  period: string;
  period_start: string;
  reset_at: string;
  cost_used: number;
  reserved: number;
  invocations: number;
  limit: number | null;
  remaining: number | null;
  execution_limit: number | null;
  usage_percentage: number | null;
  warning: boolean;
  degraded: boolean;
  limit_reached: boolean;
}

export interface RateLimitWindow {
  window: string;
  limit: number;
  used: number;
  remaining: number;
  reset_seconds: number;
}

/** GET /external-agents/{id}/governance-status: what would decide the agent's next call. */
export interface GovernanceStatus {
  external_agent_id: string;
  budget: { agent: BudgetUsage[]; organization: BudgetUsage[] };
  rate_limits: { available: boolean; windows: RateLimitWindow[] };
  policies: {
    combining: string;
    applicable: Array<{ id: string; name: string; effect: string; priority: number }>;
  };
  pending_approvals: number;
  degraded: { budget: boolean; rate_limiter: boolean };
}

/** The fields of an agent (GET /external-agents) a picker needs. */
export interface AgentSummary {
  id: string;
  name: string;
  budget_config: BudgetConfig;
}

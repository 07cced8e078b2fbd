/** The governance answers only this screen reads, as the routes under src/governance/ declare them. */

import type { BudgetConfig, BudgetUsage } from "../../api/types";

/** GET /governance/budget and GET /external-agents/{id}/budget. */
export interface BudgetStatus {
  scope: string;
  scope_id: string;
  budget_config: BudgetConfig;
  monthly: BudgetUsage;
  daily: BudgetUsage;
}

export const DECISIONS = [
  "allowed",
  "rate_limited",
  "budget_exceeded",
  "policy_denied",
  "pending_approval",
] as const;
export type Decision = (typeof DECISIONS)[number];

export const DECISION_LABELS: Record<Decision, string> = {
  allowed: "Allowed",
  rate_limited: "Rate limited",
  budget_exceeded: "Over budget",
  policy_denied: "Policy denied",
  pending_approval: "Pending approval",
};

export type ActivityBucket = "minute" | "hour" | "day";

/** GET /governance/activity: every bucket of the range, oldest first. */
export interface GovernanceActivity {
  from: string;
  to: string;
  bucket: ActivityBucket;
  series: Array<{
    start: string;
    decisions: Record<Decision, number>;
    spend_usd: number;
    invocations: number;
  }>;
}

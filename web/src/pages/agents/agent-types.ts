/**
 * The shapes the agent screens read, as the API answers them (src/agents/agent.schemas.ts,
 * src/lineage/lineage-view.ts, src/delivery/delivery.routes.ts,
 * src/invocation/invocation.routes.ts); the governance shapes are shared, in api/types.ts.
 */

import type { BudgetConfig } from "../../api/types";

export const PLATFORMS = [
  "teams",
  "discord",
  "slack",
  "telegram",
  "notion",
  "custom_http",
  "mattermost",
] as const;
export type Platform = (typeof PLATFORMS)[number];

export const AUTH_TYPES = ["oauth2", "api_key", "bearer_token", "basic", "hmac", "custom", "none"] as const;
export type AuthType = (typeof AUTH_TYPES)[number];

export const AGENT_STATUSES = ["active", "inactive", "deleted"] as const;

export const PLATFORM_LABELS: Record<Platform, string> = {
  teams: "Microsoft Teams",
  discord: "Discord",
  slack: "Slack",
  telegram: "Telegram",
  notion: "Notion",
  custom_http: "Custom HTTP",
  mattermost: "Mattermost",
};

export type ConfigObject = Record<string, unknown>;

export interface Agent {
  id: string;
  name: string;
  description: string | null;
  platform: Platform;
  webhook_url: string;
  auth_type: AuthType;
  auth_config: ConfigObject;
  platform_config: ConfigObject;
  rate_limit_config: ConfigObject;
  budget_config: ConfigObject & BudgetConfig;
  approval_config: ConfigObject | null;
  capabilities: string[];
  tags: string[];
  status: (typeof AGENT_STATUSES)[number];
  version: number;
  created_at: string;
  updated_at: string;
}

/** One invocation, as GET /external-agents/{id}/invocations lists it (the fields shown here). */
export interface Invocation {
  invocation_id: string;
  status: string;
  created_at: string;
  duration_ms: number | null;
  cost_usd: number | null;
  error: string | null;
  external_user: { id: string | null; email: string | null };
  credential: { type: string; id: string; api_key_prefix: string | null };
  webhook_delivery_status: string | null;
}

export interface Delivery {
  id: string;
  target: string;
  event_type: string;
  invocation_id: string | null;
  platform: string | null;
  status: "pending" | "delivering" | "delivered" | "failed" | "dead";
  attempts: number;
  next_attempt_at: string;
  last_status_code: number | null;
  last_error: string | null;
  created_at: string;
  delivered_at: string | null;
}

export interface InvokeSuccess {
  invocation_id: string;
  trace_id: string;
  status: string;
  output: unknown;
  cost_usd: number;
  duration_ms: number;
}

export interface PendingApproval {
  invocation_id: string;
  approval_id?: string;
  status: "pending_approval";
  reasons: string[];
  expires_at?: string;
}

import type { ExternalAgentRow } from "../db/schema.js";
import type { Agent } from "./agent.schemas.js";
import type { AgentStatus, AuthType, Platform } from "./agent-kinds.js";
import { maskSecrets } from "./credentials.js";

/** The API representation of a stored agent: snake_case, credentials masked. */
export function toAgentView(row: ExternalAgentRow): Agent {
  return {
    id: row.id,
    organization_id: row.organizationId,
    name: row.name,
    description: row.description,
    platform: row.platform as Platform,
    webhook_url: row.webhookUrl,
    auth_type: row.authType as AuthType,
    auth_config: maskSecrets(row.authConfig),
    platform_config: maskSecrets(row.platformConfig),
    rate_limit_config: row.rateLimitConfig,
    budget_config: row.budgetConfig,
    approval_config: (row.approvalConfig as Agent["approval_config"]) ?? null,
    a2a: { published: row.a2aPublished },
    capabilities: row.capabilities,
    config: row.config,
    tags: row.tags,
    status: row.status as AgentStatus,
    version: row.version,
    created_by: row.createdBy,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    deleted_at: row.deletedAt?.toISOString() ?? null,
  };
}

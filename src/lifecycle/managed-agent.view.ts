import type { ManagedAgentRow } from "../db/schema.js";
import type { AgentState } from "./agent-states.js";
import type { ManagedAgent } from "./managed-agent.schemas.js";

/** A managed agent as the API shows it. */
export function toManagedAgentView(row: ManagedAgentRow): ManagedAgent {
  return {
    id: row.id,
    organization_id: row.organizationId,
    name: row.name,
    version: row.version,
    description: row.description,
    type: row.type,
    tags: row.tags,
    subscribed_topics: row.subscribedTopics,
    findings_topic: row.findingsTopic,
    command: row.command,
    managed_process: row.command !== null && row.packageDir !== null,
    resource_hints: row.resourceHints,
    config_schema: row.configSchema,
    config_version: row.configVersion,
    state: row.state as AgentState,
    state_changed_at: row.stateChangedAt.toISOString(),
    health: row.health as ManagedAgent["health"],
    heartbeat_interval_s: row.heartbeatIntervalS,
    last_heartbeat_at: row.lastHeartbeatAt?.toISOString() ?? null,
    last_heartbeat: row.lastHeartbeat,
    created_by: row.createdBy,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

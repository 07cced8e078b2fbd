/**
 * The managed-agent API's shapes as the dashboard reads them (src/lifecycle/*.schemas.ts,
 * agent-config.routes.ts and lifecycle-events.ts on the server).
 */

export const AGENT_STATES = ["discovered", "registered", "running", "stopped", "failed"] as const;
export type AgentState = (typeof AGENT_STATES)[number] | "deleted";

export interface ManagedAgent {
  id: string;
  name: string;
  version: string;
  description: string;
  type: string;
  tags: string[];
  subscribed_topics: string[];
  findings_topic: string;
  /** True when this Steward runs the agent's package as a local process (start/stop/restart). */
  managed_process: boolean;
  config_schema: Record<string, unknown> | null;
  config_version: number;
  state: AgentState;
  state_changed_at: string;
  health: "unknown" | "healthy" | "unhealthy";
  heartbeat_interval_s: number;
  last_heartbeat_at: string | null;
  last_heartbeat: Record<string, unknown> | null;
}

/** GET /agents/{id}/process: null when this Steward does not run the agent's process now. */
export interface ProcessState {
  pid: number | null;
  started_at: string | null;
  restarts: number;
  state: string;
}

export interface Transition {
  id: number;
  from: string | null;
  to: string;
  reason: string | null;
  actor: { type: string; id: string };
  at: string;
}

export interface AgentAlert {
  id: string;
  kind: string;
  message: string;
  fired_at: string;
}

export interface MetricPoint {
  t: string;
  count: number;
  sum: number;
  avg: number;
  min: number;
  max: number;
}

export interface MetricSeries {
  from: string;
  to: string;
  step: number;
  series: Array<{ name: string; points: MetricPoint[] }>;
}

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LogEntry {
  id: number;
  level: LogLevel;
  message: string;
  context: Record<string, unknown>;
  logged_at: string;
}

export type ConfigSource = "default" | "environment" | "stored" | "override";

export interface EffectiveConfig {
  /** The stored version in force; 0 before the first PUT. */
  version: number;
  config: Record<string, unknown>;
  sources: Record<string, ConfigSource>;
}

export interface ConfigDiff {
  added: Record<string, unknown>;
  removed: string[];
  changed: Record<string, { from: unknown; to: unknown }>;
}

export interface ConfigVersion {
  version: number;
  config: Record<string, unknown>;
  author: { type: string; id: string };
  created_at: string;
  /** Against the version before it (the first version: against nothing). */
  diff: ConfigDiff;
}

/** One message of GET /agents/ws; `ready` comes first on every connection. */
export type LifecycleEvent = { agent_id: string; at: string } & (
  | { type: "status"; from: string | null; to: AgentState; reason: string | null }
  | { type: "heartbeat"; status: string | null; uptime: number | null }
  | { type: "health"; health: ManagedAgent["health"]; missed_heartbeats: number }
  | { type: "alert"; alert: Record<string, unknown> }
  | { type: "config"; version: number }
  | { type: "process"; event: "started" | "crashed" | "gave_up" | "stopped"; pid?: number }
);

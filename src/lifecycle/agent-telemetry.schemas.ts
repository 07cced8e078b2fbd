import Type, { type Static } from "typebox";
import { Nullable } from "../http/openapi.js";
import { PageQuery, Paginated } from "../http/pagination.js";
import { LOG_LEVELS, type LogEntry } from "./telemetry-store.js";

/** What managed agents report (over HTTP or NATS) and how their telemetry is queried. */

const Timestamp = Type.String({ format: "date-time" });
/**
 * A reported figure. Capped so that sums over a window stay finite: two values near the
 * largest double would overflow PostgreSQL's sum and break every query of that window.
 */
const MAX_METRIC = 1e15;
const Metric = Type.Number({ minimum: 0, maximum: MAX_METRIC });

export const HeartbeatBody = Type.Object({
  agent_id: Type.Optional(Type.String({ maxLength: 100 })),
  status: Type.Optional(Type.String({ maxLength: 64 })),
  timestamp: Type.Optional(Timestamp),
  uptime: Type.Optional(Type.Number({ minimum: 0, description: "Seconds since the agent started" })),
});
export type HeartbeatBody = Static<typeof HeartbeatBody>;

export const MetricsBody = Type.Object({
  timestamp: Type.Optional(Timestamp),
  events_processed: Type.Optional(Metric),
  processing_time_ms: Type.Optional(Metric),
  errors: Type.Optional(Metric),
  cpu: Type.Optional(Metric),
  memory: Type.Optional(Metric),
  custom: Type.Optional(
    Type.Record(
      Type.String({ pattern: "^[A-Za-z_][A-Za-z0-9_.:-]{0,99}$" }),
      Type.Number({ minimum: -MAX_METRIC, maximum: MAX_METRIC }),
      { maxProperties: 100, additionalProperties: false },
    ),
  ),
});
export type MetricsBody = Static<typeof MetricsBody>;

const LogEntryBody = Type.Object({
  level: Type.Enum(LOG_LEVELS),
  message: Type.String({ maxLength: 100_000 }),
  context: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  timestamp: Type.Optional(Timestamp),
});

export const LogsBody = Type.Object({
  entries: Type.Array(LogEntryBody, { minItems: 1, maxItems: 1000 }),
});
export type LogsBody = Static<typeof LogsBody>;

/** Log entries as stored: the agent's time when it gave one, else now. */
export function logEntriesOf(body: LogsBody, now = new Date()): LogEntry[] {
  return body.entries.map((entry) => ({
    level: entry.level,
    message: entry.message,
    context: entry.context ?? {},
    loggedAt: entry.timestamp ? new Date(entry.timestamp) : now,
  }));
}

export const MetricsQuery = Type.Object({
  name: Type.Optional(Type.String({ maxLength: 100 })),
  from: Type.Optional(Type.String({ format: "date-time", description: "Default: an hour ago" })),
  to: Type.Optional(Type.String({ format: "date-time", description: "Default: now" })),
  step: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 86_400, description: "Bucket seconds (default 60)" }),
  ),
});

export const MetricSeries = Type.Object({
  from: Timestamp,
  to: Timestamp,
  step: Type.Integer(),
  series: Type.Array(
    Type.Object({
      name: Type.String(),
      points: Type.Array(
        Type.Object({
          t: Timestamp,
          count: Type.Integer(),
          sum: Type.Number(),
          avg: Type.Number(),
          min: Type.Number(),
          max: Type.Number(),
        }),
      ),
    }),
  ),
});

export const LogsQuery = Type.Object({
  ...PageQuery,
  level: Type.Optional(Type.Enum(LOG_LEVELS, { description: "This level and more severe ones" })),
  q: Type.Optional(Type.String({ maxLength: 200, description: "Substring of the message" })),
  from: Type.Optional(Type.String({ format: "date-time" })),
  to: Type.Optional(Type.String({ format: "date-time" })),
});

export const LogPage = Paginated(
  Type.Object({
    id: Type.Integer(),
    level: Type.Enum(LOG_LEVELS),
    message: Type.String(),
    context: Type.Record(Type.String(), Type.Unknown()),
    logged_at: Timestamp,
  }),
);

export const AgentHealth = Type.Object({
  agent_id: Type.String(),
  state: Type.String(),
  health: Type.String(),
  heartbeat_interval_s: Type.Integer(),
  last_heartbeat_at: Nullable(Timestamp),
  reported_status: Nullable(Type.String()),
  uptime_s: Nullable(Type.Number()),
  missed_heartbeats: Type.Integer(),
  metrics: Type.Record(Type.String(), Type.Object({ value: Type.Number(), recorded_at: Timestamp })),
  open_alerts: Type.Array(Type.Record(Type.String(), Type.Unknown())),
});

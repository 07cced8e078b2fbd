import Type, { type Static } from "typebox";
import { Nullable } from "../http/openapi.js";
import { PageQuery, Paginated } from "../http/pagination.js";

/** Request and response shapes of managed-agent alert rules and alerts. */

export const AgentAlertRuleBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, pattern: "\\S" }),
    enabled: Type.Optional(Type.Boolean()),
    agent_id: Type.Optional(
      Type.String({ minLength: 1, maxLength: 100, description: "Omitted: every agent" }),
    ),
    kind: Type.Enum(["missed_heartbeats", "error_rate", "metric_threshold", "crash_loop"], {
      description:
        "missed_heartbeats: threshold = beats missed; error_rate: threshold = errors / events_processed over window_s; metric_threshold: the latest value of `metric` above threshold; crash_loop: no threshold, routes the crash-loop alerts Steward raises itself to notify_external_agent_id",
    }),
    metric: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    threshold: Type.Optional(Type.Number({ minimum: 0, description: "Required, except for crash_loop" })),
    window_s: Type.Optional(Type.Integer({ minimum: 10, maximum: 86_400 })),
    notify_external_agent_id: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: "An external agent (agt_…) whose chat platform receives the alert",
      }),
    ),
  },
  { additionalProperties: false },
);
export type AgentAlertRuleBody = Static<typeof AgentAlertRuleBody>;

export const AgentAlertRule = Type.Object({
  id: Type.String(),
  name: Type.String(),
  enabled: Type.Boolean(),
  agent_id: Nullable(Type.String()),
  kind: AgentAlertRuleBody.properties.kind,
  metric: Nullable(Type.String()),
  threshold: Type.Number(),
  window_s: Type.Integer(),
  notify_external_agent_id: Nullable(Type.String()),
  created_by: Nullable(Type.String()),
  created_at: Type.String({ format: "date-time" }),
});

export const AgentAlert = Type.Object({
  id: Type.String(),
  agent_id: Type.String(),
  rule_id: Nullable(Type.String()),
  kind: Type.String(),
  message: Type.String(),
  details: Type.Record(Type.String(), Type.Unknown()),
  fired_at: Type.String({ format: "date-time" }),
  resolved_at: Nullable(Type.String({ format: "date-time" })),
});

export const AlertQuery = Type.Object({
  ...PageQuery,
  agent_id: Type.Optional(Type.String({ maxLength: 100 })),
  open: Type.Optional(Type.Boolean()),
});

export const AgentAlertRulePage = Paginated(AgentAlertRule);
export const AgentAlertPage = Paginated(AgentAlert);

import Type, { type Static } from "typebox";
import { Nullable } from "../http/openapi.js";
import { PageQuery, Paginated } from "../http/pagination.js";
import { AGENT_HEALTH, AGENT_STATES } from "./agent-states.js";

/** Request and response shapes of /api/v1/agents (managed agents), as clients see them. */

const Timestamp = Type.String({ format: "date-time" });
const JsonObject = Type.Record(Type.String(), Type.Unknown());

export const ManagedAgent = Type.Object({
  id: Type.String({ description: "`{type}-{uuid}`" }),
  organization_id: Type.String(),
  name: Type.String(),
  version: Type.String(),
  description: Type.String(),
  type: Type.String(),
  tags: Type.Array(Type.String()),
  subscribed_topics: Type.Array(Type.String()),
  findings_topic: Type.String(),
  command: Nullable(Type.String()),
  /** True when Steward can run it: discovered from a package with AGENT_COMMAND. */
  managed_process: Type.Boolean(),
  resource_hints: Type.Record(Type.String(), Type.String()),
  config_schema: Nullable(JsonObject),
  config_version: Type.Integer(),
  state: Type.Enum(AGENT_STATES),
  state_changed_at: Timestamp,
  health: Type.Enum(AGENT_HEALTH),
  heartbeat_interval_s: Type.Integer(),
  last_heartbeat_at: Nullable(Timestamp),
  last_heartbeat: Nullable(JsonObject),
  created_by: Nullable(Type.String()),
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type ManagedAgent = Static<typeof ManagedAgent>;

const Subject = Type.String({ minLength: 1, maxLength: 255 });

/** The definition of an agent registered by hand or registering itself. */
export const AgentDefinition = {
  name: Type.String({ minLength: 1, maxLength: 63, description: "Lower-case slug, like AGENT_NAME" }),
  version: Type.String({ minLength: 1, maxLength: 64, description: "Semantic version" }),
  description: Type.String({ minLength: 1, maxLength: 2000 }),
  type: Type.Optional(Type.String({ minLength: 1, maxLength: 32, description: "Id prefix (default agent)" })),
  tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 50 })),
  subscribed_topics: Type.Array(Subject, { minItems: 1, maxItems: 100 }),
  findings_topic: Subject,
  heartbeat_interval_s: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600 })),
  config_schema: Type.Optional(JsonObject),
};

export const AgentDefinitionBody = Type.Object(AgentDefinition, { additionalProperties: false });
export type AgentDefinitionBody = Static<typeof AgentDefinitionBody>;

/** Either `agent_id` of a discovered agent, or a whole definition (name, version, … as below). */
export const RegisterAgentBody = Type.Object(
  {
    agent_id: Type.Optional(
      Type.String({ minLength: 1, maxLength: 100, description: "A discovered agent to register" }),
    ),
    ...Type.Partial(AgentDefinitionBody).properties,
  },
  { additionalProperties: false },
);
export type RegisterAgentBody = Static<typeof RegisterAgentBody>;

export const SelfRegisterBody = Type.Object(
  { discovery_token: Type.String({ minLength: 1, maxLength: 200 }), ...AgentDefinition },
  { additionalProperties: false },
);
export type SelfRegisterBody = Static<typeof SelfRegisterBody>;

export const NatsCredentials = Type.Object({
  creds: Type.String({ description: "A NATS .creds file; secret, shown once" }),
  public_key: Type.String(),
  expires_at: Timestamp,
  permissions: Type.Object({ publish: Type.Array(Type.String()), subscribe: Type.Array(Type.String()) }),
});

export const AgentToken = Type.Object({
  token: Type.String({ description: "Bearer JWT for the agent's own API calls; secret" }),
  expires_at: Timestamp,
  nats: Nullable(NatsCredentials),
});

export const Registration = Type.Object({
  agent: ManagedAgent,
  credentials: Type.Object({
    token: Type.String(),
    token_expires_at: Timestamp,
    nats: Nullable(NatsCredentials),
  }),
});

export const DiscoveryTokenBody = Type.Object(
  {
    ttl_s: Type.Optional(
      Type.Integer({ minimum: 60, maximum: 86_400, description: "Lifetime in seconds (default 900)" }),
    ),
  },
  { additionalProperties: false },
);

export const DiscoveryToken = Type.Object({
  id: Type.String(),
  token: Type.String({ description: "Single use; shown once" }),
  expires_at: Timestamp,
});

export const StatusBody = Type.Object(
  {
    status: Type.Enum(AGENT_STATES),
    reason: Type.Optional(Type.String({ maxLength: 1000 })),
  },
  { additionalProperties: false },
);

export const Transition = Type.Object({
  id: Type.Integer(),
  from: Nullable(Type.String()),
  to: Type.String(),
  reason: Nullable(Type.String()),
  actor: Type.Object({ type: Type.String(), id: Type.String() }),
  at: Timestamp,
});

export const ListAgentsQuery = Type.Object({
  ...PageQuery,
  state: Type.Optional(Type.Enum(AGENT_STATES)),
  type: Type.Optional(Type.String({ maxLength: 32 })),
  name: Type.Optional(Type.String({ maxLength: 63 })),
});
export type ListAgentsQuery = Static<typeof ListAgentsQuery>;

export const ManagedAgentPage = Paginated(ManagedAgent);
export const TransitionPage = Paginated(Transition);
export const AgentIdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });

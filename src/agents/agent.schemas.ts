import Type, { type Static } from "typebox";
import { ApprovalConfig } from "../approvals/approval-config.js";
import { PageQuery, Paginated } from "../http/pagination.js";
import { AGENT_STATUSES, AUTH_TYPES, PLATFORMS } from "./agent-kinds.js";
import { BudgetConfig, RateLimitConfig } from "./governance-config.js";

/** Request and response shapes of /api/v1/external-agents, as clients see them. */

const FreeObject = (description: string) => Type.Record(Type.String(), Type.Unknown(), { description });

const AgentFields = {
  name: Type.String({
    minLength: 1,
    maxLength: 200,
    pattern: "\\S",
    description: "Unique among the organization's agents",
  }),
  description: Type.Union([Type.String({ maxLength: 4000 }), Type.Null()]),
  webhook_url: Type.String({ minLength: 1, maxLength: 2048, description: "The agent's http(s) endpoint" }),
  auth_type: Type.Enum(AUTH_TYPES, { description: "How Steward authenticates to the agent" }),
  auth_config: FreeObject("Credentials for auth_type; secrets are stored encrypted and returned masked"),
  platform_config: FreeObject("Settings for the platform; secrets are stored encrypted and returned masked"),
  rate_limit_config: RateLimitConfig,
  budget_config: BudgetConfig,
  approval_config: Type.Union([ApprovalConfig, Type.Null()], {
    description: "What makes a call to this agent wait for a person's approval; null to remove",
  }),
  capabilities: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), {
    maxItems: 100,
    uniqueItems: true,
  }),
  config: FreeObject("Free-form agent settings"),
  tags: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 50, uniqueItems: true }),
  status: Type.Enum(["active", "inactive"], { description: "inactive agents cannot be invoked" }),
  a2a: Type.Object(
    {
      published: Type.Boolean({
        description: "Whether A2A clients reach the agent through Steward, governed, at /a2a/{id}",
      }),
    },
    { additionalProperties: false },
  ),
};

export const CreateAgentBody = Type.Object(
  {
    name: AgentFields.name,
    description: Type.Optional(AgentFields.description),
    platform: Type.Enum(PLATFORMS, { description: "Where results are delivered; fixed after creation" }),
    webhook_url: AgentFields.webhook_url,
    auth_type: Type.Optional(AgentFields.auth_type),
    auth_config: Type.Optional(AgentFields.auth_config),
    platform_config: Type.Optional(AgentFields.platform_config),
    rate_limit_config: Type.Optional(AgentFields.rate_limit_config),
    budget_config: Type.Optional(AgentFields.budget_config),
    approval_config: Type.Optional(AgentFields.approval_config),
    capabilities: Type.Optional(AgentFields.capabilities),
    config: Type.Optional(AgentFields.config),
    tags: Type.Optional(AgentFields.tags),
    status: Type.Optional(AgentFields.status),
    a2a: Type.Optional(AgentFields.a2a),
  },
  { additionalProperties: false },
);
export type CreateAgentBody = Static<typeof CreateAgentBody>;

export const UpdateAgentBody = Type.Object(
  {
    name: Type.Optional(AgentFields.name),
    description: Type.Optional(AgentFields.description),
    platform: Type.Optional(
      Type.String({ description: "Cannot be changed; present only to explain the refusal" }),
    ),
    webhook_url: Type.Optional(AgentFields.webhook_url),
    auth_type: Type.Optional(AgentFields.auth_type),
    auth_config: Type.Optional(AgentFields.auth_config),
    platform_config: Type.Optional(AgentFields.platform_config),
    rate_limit_config: Type.Optional(AgentFields.rate_limit_config),
    budget_config: Type.Optional(AgentFields.budget_config),
    approval_config: Type.Optional(AgentFields.approval_config),
    capabilities: Type.Optional(AgentFields.capabilities),
    config: Type.Optional(AgentFields.config),
    tags: Type.Optional(AgentFields.tags),
    status: Type.Optional(AgentFields.status),
    a2a: Type.Optional(AgentFields.a2a),
  },
  { additionalProperties: false },
);
export type UpdateAgentBody = Static<typeof UpdateAgentBody>;

export const Agent = Type.Object({
  id: Type.String({ description: "agt_…" }),
  organization_id: Type.String(),
  name: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  platform: Type.Enum(PLATFORMS, { description: "Delivery platform" }),
  webhook_url: Type.String(),
  auth_type: Type.Enum(AUTH_TYPES, { description: "Outbound authentication" }),
  auth_config: AgentFields.auth_config,
  platform_config: AgentFields.platform_config,
  rate_limit_config: AgentFields.rate_limit_config,
  budget_config: AgentFields.budget_config,
  approval_config: AgentFields.approval_config,
  a2a: AgentFields.a2a,
  capabilities: Type.Array(Type.String()),
  config: AgentFields.config,
  tags: Type.Array(Type.String()),
  status: Type.Enum(AGENT_STATUSES, { description: "deleted agents are kept, hidden from lists" }),
  version: Type.Integer({ description: "Incremented by every update" }),
  created_by: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String({ format: "date-time" }),
  updated_at: Type.String({ format: "date-time" }),
  deleted_at: Type.Union([Type.String({ format: "date-time" }), Type.Null()]),
});
export type Agent = Static<typeof Agent>;

export const AgentList = Paginated(Agent);

export const ListAgentsQuery = Type.Object(
  {
    ...PageQuery,
    platform: Type.Optional(Type.Enum(PLATFORMS, { description: "Only agents of this platform" })),
    status: Type.Optional(
      Type.Enum(AGENT_STATUSES, {
        description: "Only agents in this status; deleted ones appear only when asked for",
      }),
    ),
    tag: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, description: "Only agents carrying this tag" }),
    ),
    search: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        description: "Case-insensitive match on name or description",
      }),
    ),
  },
  { additionalProperties: false },
);
export type ListAgentsQuery = Static<typeof ListAgentsQuery>;

export const AgentIdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

import Type, { type Static } from "typebox";
import { PageQuery, Paginated } from "../http/pagination.js";
import { ApprovalConfig, ApprovalTriggers, ApprovalWorkflow } from "./approval-config.js";

/** Request and response shapes of /api/v1/approval-rules, as clients see them. */

const MAX_AGENTS_PER_RULE = 500;

const RuleFields = {
  name: Type.String({
    minLength: 1,
    maxLength: 200,
    pattern: "\\S",
    description: "Unique among the organization's approval rules; rules apply in name order",
  }),
  enabled: Type.Boolean({ description: "Disabled rules are ignored (default true)" }),
  external_agent_ids: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
    maxItems: MAX_AGENTS_PER_RULE,
    description: "Agents (agt_…) of the organization the rule applies to; empty or omitted: every agent",
  }),
  trusted_users: ApprovalConfig.properties.trusted_users,
};

export const CreateApprovalRuleBody = Type.Object(
  {
    name: RuleFields.name,
    enabled: Type.Optional(RuleFields.enabled),
    external_agent_ids: Type.Optional(RuleFields.external_agent_ids),
    triggers: ApprovalTriggers,
    workflow: Type.Optional(ApprovalWorkflow),
    trusted_users: RuleFields.trusted_users,
  },
  { additionalProperties: false },
);
export type CreateApprovalRuleBody = Static<typeof CreateApprovalRuleBody>;

export const UpdateApprovalRuleBody = Type.Object(
  {
    name: Type.Optional(RuleFields.name),
    enabled: Type.Optional(RuleFields.enabled),
    external_agent_ids: Type.Optional(RuleFields.external_agent_ids),
    triggers: Type.Optional(ApprovalTriggers),
    workflow: Type.Optional(ApprovalWorkflow),
    trusted_users: RuleFields.trusted_users,
  },
  { additionalProperties: false },
);
export type UpdateApprovalRuleBody = Static<typeof UpdateApprovalRuleBody>;

export const ApprovalRule = Type.Object({
  id: Type.String({ description: "arl_…" }),
  organization_id: Type.String(),
  name: Type.String(),
  enabled: Type.Boolean(),
  external_agent_ids: Type.Array(Type.String(), { description: "Empty: every agent of the organization" }),
  triggers: ApprovalTriggers,
  workflow: ApprovalWorkflow,
  trusted_users: Type.Array(Type.String()),
  created_by: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String({ format: "date-time" }),
  updated_at: Type.String({ format: "date-time" }),
});
export type ApprovalRule = Static<typeof ApprovalRule>;

export const ApprovalRuleList = Paginated(ApprovalRule);

export const ListApprovalRulesQuery = Type.Object(
  {
    ...PageQuery,
    enabled: Type.Optional(Type.Boolean({ description: "Only enabled (true) or disabled (false) rules" })),
  },
  { additionalProperties: false },
);
export type ListApprovalRulesQuery = Static<typeof ListApprovalRulesQuery>;

export const ApprovalRuleIdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

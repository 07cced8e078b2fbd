import Type, { type Static } from "typebox";
import { PageQuery, Paginated } from "../../http/pagination.js";
import { MAX_CONDITION_VALUES } from "./condition-parser.js";
import { VALUE_CONDITION_TYPES, WEEKDAYS } from "./conditions.js";

/** Request and response shapes of /api/v1/policies, as clients see them. */

const MAX_CONDITIONS = 50;
const MAX_CEDAR_LENGTH = 10_000;

const Effect = Type.Enum(["allow", "deny"], { description: "What a matching policy decides" });

const ValueCondition = Type.Object(
  {
    type: Type.Enum(VALUE_CONDITION_TYPES),
    values: Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
      minItems: 1,
      maxItems: MAX_CONDITION_VALUES,
      description:
        "Holds when the call has one of these: environment, CIDR range containing the caller IP, role, team, external system, external user id or e-mail",
    }),
  },
  { title: "ValueCondition" },
);

const TimeRangeCondition = Type.Object(
  {
    type: Type.Literal("time_range"),
    start: Type.String({ description: '"HH:MM", inclusive' }),
    end: Type.String({ description: '"HH:MM", exclusive; earlier than start crosses midnight' }),
    days: Type.Optional(
      Type.Array(Type.Enum(WEEKDAYS), { description: "Days the range starts on; every day when omitted" }),
    ),
    timezone: Type.Optional(Type.String({ description: "IANA time zone; UTC when omitted" })),
  },
  { title: "TimeRangeCondition" },
);

const CustomCondition = Type.Object(
  {
    type: Type.Literal("custom"),
    attribute: Type.String({
      description: 'Dotted path into the request attributes, e.g. "context.department"',
    }),
    equals: Type.Unknown({ description: "Holds when the value at attribute equals this (deeply)" }),
  },
  { title: "CustomCondition" },
);

const Condition = Type.Union([ValueCondition, TimeRangeCondition, CustomCondition]);

// The request side takes conditions loosely on purpose: a schema union would answer a
// mistake with an error from every branch, while the service names the exact field.
const ConditionsInput = Type.Array(Type.Unknown(), {
  maxItems: MAX_CONDITIONS,
  description:
    "All must hold; none matches every call. Each is a ValueCondition, TimeRangeCondition or CustomCondition (see the Policy response). Must be empty when cedar is set.",
});

const PolicyFields = {
  name: Type.String({
    minLength: 1,
    maxLength: 200,
    pattern: "\\S",
    description: "Unique among the organization's policies",
  }),
  description: Type.Union([Type.String({ maxLength: 4000 }), Type.Null()]),
  effect: Effect,
  priority: Type.Integer({
    minimum: -1_000_000,
    maximum: 1_000_000,
    description: "Higher is evaluated first (default 0)",
  }),
  enabled: Type.Boolean({ description: "Disabled policies are ignored (default true)" }),
  cedar: Type.String({
    minLength: 1,
    maxLength: MAX_CEDAR_LENGTH,
    description: "One Cedar policy; when set, its permit/forbid is the effect and conditions must be empty",
  }),
};

export const CreatePolicyBody = Type.Object(
  {
    name: PolicyFields.name,
    description: Type.Optional(PolicyFields.description),
    effect: Type.Optional(PolicyFields.effect),
    priority: Type.Optional(PolicyFields.priority),
    enabled: Type.Optional(PolicyFields.enabled),
    conditions: Type.Optional(ConditionsInput),
    cedar: Type.Optional(PolicyFields.cedar),
  },
  { additionalProperties: false },
);
export type CreatePolicyBody = Static<typeof CreatePolicyBody>;

export const UpdatePolicyBody = Type.Object(
  {
    name: Type.Optional(PolicyFields.name),
    description: Type.Optional(PolicyFields.description),
    effect: Type.Optional(PolicyFields.effect),
    priority: Type.Optional(PolicyFields.priority),
    enabled: Type.Optional(PolicyFields.enabled),
    conditions: Type.Optional(ConditionsInput),
    cedar: Type.Optional(
      Type.Union([PolicyFields.cedar, Type.Null()], {
        description: "A Cedar policy, or null to turn this into a conditions policy",
      }),
    ),
  },
  { additionalProperties: false },
);
export type UpdatePolicyBody = Static<typeof UpdatePolicyBody>;

export const Policy = Type.Object({
  id: Type.String({ description: "pol_…" }),
  organization_id: Type.String(),
  name: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  effect: Effect,
  priority: Type.Integer(),
  enabled: Type.Boolean(),
  conditions: Type.Array(Condition),
  cedar: Type.Union([Type.String(), Type.Null()]),
  created_by: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String({ format: "date-time" }),
  updated_at: Type.String({ format: "date-time" }),
});
export type Policy = Static<typeof Policy>;

export const PolicyList = Paginated(Policy);

export const ListPoliciesQuery = Type.Object(
  {
    ...PageQuery,
    enabled: Type.Optional(Type.Boolean({ description: "Only enabled (true) or disabled (false) policies" })),
  },
  { additionalProperties: false },
);
export type ListPoliciesQuery = Static<typeof ListPoliciesQuery>;

export const PolicyIdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

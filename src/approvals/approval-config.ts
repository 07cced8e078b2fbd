import Type, { type Static } from "typebox";
import { ROLES } from "../auth/permissions.js";

/**
 * Approval rules, on an agent (`approval_config`) or for a whole organization
 * (`/api/v1/approval-rules`): what makes a call need a person's sign-off, and who may
 * give it. Durations are seconds or strings such as "90s", "15m", "1h", "2d".
 */

export const Duration = Type.Union(
  [Type.Integer({ minimum: 1 }), Type.String({ pattern: "^\\d+(s|m|h|d)$" })],
  {
    description: 'Seconds, or a duration such as "15m", "1h", "2d"',
  },
);

export const ApprovalTriggers = Type.Object(
  {
    cost_threshold: Type.Optional(
      Type.Number({ minimum: 0, description: "Estimated cost above which a call needs approval" }),
    ),
    first_invocation: Type.Optional(
      Type.Boolean({ description: "The first call by an external user to this agent" }),
    ),
    environments: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 20 })),
    payload_patterns: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 200 }), {
        maxItems: 20,
        description: "Case-insensitive regular expressions over the input",
      }),
    ),
    sensitive_data: Type.Optional(
      Type.Boolean({
        description: "Card numbers (Luhn-checked), US SSNs, API-key and password shapes in the input",
      }),
    ),
    rate: Type.Optional(
      Type.Object(
        { max_calls: Type.Integer({ minimum: 1 }), window: Duration },
        {
          additionalProperties: false,
          description: "More than max_calls by one external user within the window",
        },
      ),
    ),
  },
  { additionalProperties: false },
);
export type ApprovalTriggers = Static<typeof ApprovalTriggers>;

export const ApprovalWorkflow = Type.Object(
  {
    approver_roles: Type.Optional(Type.Array(Type.Enum(ROLES), { maxItems: 10 })),
    approver_users: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
        maxItems: 100,
        description: "Principal ids: API key ids or JWT subjects",
      }),
    ),
    required_approvals: Type.Optional(Type.Integer({ minimum: 1, maximum: 20, default: 1 })),
    allow_self_approval: Type.Optional(Type.Boolean({ default: false })),
    timeout: Type.Optional(Duration),
    on_timeout: Type.Optional(Type.Enum(["reject", "approve"])),
    reminder_interval: Type.Optional(Duration),
    escalation_after: Type.Optional(Duration),
    escalation_to: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
        maxItems: 100,
        description: "Roles or principal ids who may also decide once escalated",
      }),
    ),
    notify: Type.Optional(
      Type.Array(Type.Enum(["email", "slack", "teams", "webhook"]), { uniqueItems: true }),
    ),
    notify_emails: Type.Optional(
      Type.Array(Type.String({ format: "email", maxLength: 254 }), {
        maxItems: 50,
        uniqueItems: true,
        description: "Where the email channel writes (needs STEWARD_SMTP_URL)",
      }),
    ),
  },
  { additionalProperties: false },
);
export type ApprovalWorkflow = Static<typeof ApprovalWorkflow>;

export const ApprovalConfig = Type.Object(
  {
    triggers: ApprovalTriggers,
    workflow: Type.Optional(ApprovalWorkflow),
    trusted_users: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 512 }), {
        maxItems: 500,
        description: "External user ids or emails whose calls never need approval",
      }),
    ),
  },
  { additionalProperties: false },
);
export type ApprovalConfig = Static<typeof ApprovalConfig>;

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** A Duration in seconds. */
export function durationSeconds(duration: number | string): number {
  if (typeof duration === "number") return duration;
  const match = /^(\d+)(s|m|h|d)$/.exec(duration);
  if (!match) throw new RangeError(`not a duration: ${duration}`);
  return Number(match[1]) * (UNIT_SECONDS[match[2] as string] as number);
}

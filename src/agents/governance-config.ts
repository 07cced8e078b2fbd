import Type, { type Static } from "typebox";
import type { FieldError } from "../errors.js";

/** Rate-limit and budget settings an agent is registered with (enforced by governance). */

const count = (description: string) => Type.Optional(Type.Integer({ minimum: 1, description }));
const money = (description: string) => Type.Optional(Type.Number({ minimum: 0, description }));
const ratio = (description: string) =>
  Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description }));

const RateLimitWindows = {
  requests_per_minute: count("Calls allowed per sliding minute"),
  requests_per_hour: count("Calls allowed per sliding hour"),
  requests_per_day: count("Calls allowed per sliding day"),
};

export const RateLimitConfig = Type.Object(
  {
    ...RateLimitWindows,
    per_user: Type.Optional(
      Type.Object(RateLimitWindows, {
        additionalProperties: false,
        description:
          "Limits for each external user (X-External-User-ID or email), on top of the agent-wide ones",
      }),
    ),
  },
  { additionalProperties: false },
);
export type RateLimitConfig = Static<typeof RateLimitConfig>;

export const BudgetConfig = Type.Object(
  {
    max_cost_per_invocation: money("Largest cost one call may have"),
    max_daily_cost: money("Cap per UTC day"),
    max_monthly_cost: money("Cap per UTC month"),
    cost_per_execution: money("Estimated cost of one call, reserved before it runs"),
    currency: Type.Optional(
      Type.String({ pattern: "^[A-Z]{3}$", description: "ISO 4217 code (default USD)" }),
    ),
    warning_threshold: ratio("Share of a cap that triggers a warning (default 0.8)"),
    degradation_threshold: ratio("Share of a cap that marks the agent degraded (default 0.9)"),
    enforcement_mode: Type.Optional(
      Type.Union([Type.Literal("hard"), Type.Literal("soft")], {
        description: "hard refuses calls over a cap; soft allows them and flags degraded (default hard)",
      }),
    ),
    monthly_execution_limit: Type.Optional(
      Type.Integer({ minimum: 0, description: "Calls allowed per UTC month" }),
    ),
  },
  { additionalProperties: false },
);
export type BudgetConfig = Static<typeof BudgetConfig>;

export const BUDGET_DEFAULTS = {
  currency: "USD",
  warning_threshold: 0.8,
  degradation_threshold: 0.9,
  enforcement_mode: "hard",
} as const satisfies BudgetConfig;

const CURRENCIES = new Set(Intl.supportedValuesOf("currency"));

/** Checks what the schema cannot express and fills in the defaults. */
export function normalizeBudgetConfig(input: BudgetConfig): { config: BudgetConfig; errors: FieldError[] } {
  const config = { ...BUDGET_DEFAULTS, ...input };
  const errors: FieldError[] = [];
  if (!CURRENCIES.has(config.currency)) {
    errors.push({
      field: "budget_config.currency",
      message: `"${config.currency}" is not an ISO 4217 currency code`,
    });
  }
  if (config.warning_threshold > config.degradation_threshold) {
    errors.push({
      field: "budget_config.warning_threshold",
      message: "must not be greater than degradation_threshold",
    });
  }
  return { config, errors };
}

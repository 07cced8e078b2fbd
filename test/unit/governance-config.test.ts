import fc from "fast-check";
import { Compile } from "typebox/compile";
import { describe, expect, it } from "vitest";
import { BudgetConfig, normalizeBudgetConfig, RateLimitConfig } from "../../src/agents/governance-config.js";

const rateLimit = Compile(RateLimitConfig);
const budget = Compile(BudgetConfig);

describe("normalizeBudgetConfig", () => {
  it("fills in USD, 0.8, 0.9 and hard enforcement when nothing is given", () => {
    expect(normalizeBudgetConfig({})).toEqual({
      config: {
        currency: "USD",
        warning_threshold: 0.8,
        degradation_threshold: 0.9,
        enforcement_mode: "hard",
      },
      errors: [],
    });
  });

  it("keeps every value the caller gave", () => {
    const input = {
      max_cost_per_invocation: 0.5,
      max_daily_cost: 10,
      max_monthly_cost: 200,
      cost_per_execution: 0.01,
      currency: "EUR",
      warning_threshold: 0.5,
      degradation_threshold: 0.75,
      enforcement_mode: "soft" as const,
      monthly_execution_limit: 1000,
    };
    expect(normalizeBudgetConfig(input)).toEqual({ config: input, errors: [] });
  });

  it("does not modify its input", () => {
    const input = { max_daily_cost: 5 };
    normalizeBudgetConfig(input);
    expect(input).toEqual({ max_daily_cost: 5 });
  });

  it.each(["USD", "EUR", "JPY", "GBP", "CHF"])("accepts the ISO 4217 currency %s", (currency) => {
    expect(normalizeBudgetConfig({ currency }).errors).toEqual([]);
  });

  it.each(["XYZ", "ABC", "QQQ"])(
    "refuses the made-up currency %s, naming budget_config.currency",
    (currency) => {
      expect(normalizeBudgetConfig({ currency }).errors).toEqual([
        { field: "budget_config.currency", message: `"${currency}" is not an ISO 4217 currency code` },
      ]);
    },
  );

  it.each([
    [{ warning_threshold: 0.95 }, "above the default degradation threshold"],
    [{ degradation_threshold: 0.5 }, "below the default warning threshold"],
    [{ warning_threshold: 0.6, degradation_threshold: 0.4 }, "both given, inverted"],
  ] as [BudgetConfig, string][])(
    "refuses a warning threshold greater than the degradation threshold: %j (%s)",
    (input) => {
      expect(normalizeBudgetConfig(input).errors).toEqual([
        {
          field: "budget_config.warning_threshold",
          message: "must not be greater than degradation_threshold",
        },
      ]);
    },
  );

  it("accepts equal thresholds", () => {
    expect(normalizeBudgetConfig({ warning_threshold: 0.7, degradation_threshold: 0.7 }).errors).toEqual([]);
  });

  it("reports a bad currency and inverted thresholds together", () => {
    const { errors } = normalizeBudgetConfig({
      currency: "XYZ",
      warning_threshold: 1,
      degradation_threshold: 0.1,
    });
    expect(errors.map((error) => error.field)).toEqual([
      "budget_config.currency",
      "budget_config.warning_threshold",
    ]);
  });

  it("refuses exactly the threshold pairs where warning > degradation", () => {
    const share = fc.double({ min: Number.MIN_VALUE, max: 1, noNaN: true });
    fc.assert(
      fc.property(share, share, (warning, degradation) => {
        const { errors } = normalizeBudgetConfig({
          warning_threshold: warning,
          degradation_threshold: degradation,
        });
        expect(errors.length > 0).toBe(warning > degradation);
      }),
    );
  });
});

describe("RateLimitConfig schema", () => {
  it.each([
    {},
    { requests_per_minute: 1 },
    { requests_per_minute: 60, requests_per_hour: 1000, requests_per_day: 10_000 },
  ])("accepts %j", (value) => {
    expect(rateLimit.Check(value)).toBe(true);
  });

  it.each([
    { requests_per_minute: 0 },
    { requests_per_minute: -1 },
    { requests_per_hour: -60 },
    { requests_per_day: 0 },
    { requests_per_minute: 1.5 },
    { requests_per_minute: "60" },
    { requests_per_second: 5 },
  ])("refuses %j", (value) => {
    expect(rateLimit.Check(value)).toBe(false);
  });

  it("accepts every positive integer count and refuses every count below 1", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1 }), fc.integer({ max: 0 }), (good, bad) => {
        expect(rateLimit.Check({ requests_per_minute: good })).toBe(true);
        expect(rateLimit.Check({ requests_per_minute: bad })).toBe(false);
      }),
    );
  });
});

describe("BudgetConfig schema", () => {
  it.each([
    {},
    { max_daily_cost: 0 },
    { max_cost_per_invocation: 0.25, max_monthly_cost: 100, cost_per_execution: 0.001 },
    { currency: "EUR", warning_threshold: 1, degradation_threshold: 1 },
    { enforcement_mode: "soft" },
    { monthly_execution_limit: 0 },
  ])("accepts %j", (value) => {
    expect(budget.Check(value)).toBe(true);
  });

  it.each([
    { max_cost_per_invocation: -0.01 },
    { max_daily_cost: -1 },
    { max_monthly_cost: -100 },
    { cost_per_execution: -0.001 },
    { max_daily_cost: "10" },
    { currency: "usd" },
    { currency: "US" },
    { currency: "USDT" },
    { warning_threshold: 0 },
    { warning_threshold: -0.1 },
    { warning_threshold: 1.01 },
    { degradation_threshold: 0 },
    { degradation_threshold: 2 },
    { enforcement_mode: "medium" },
    { monthly_execution_limit: -1 },
    { monthly_execution_limit: 2.5 },
    { max_yearly_cost: 1 },
  ])("refuses %j", (value) => {
    expect(budget.Check(value)).toBe(false);
  });

  it("refuses every negative amount", () => {
    const field = fc.constantFrom(
      "max_cost_per_invocation",
      "max_daily_cost",
      "max_monthly_cost",
      "cost_per_execution",
    );
    fc.assert(
      fc.property(field, fc.double({ max: -Number.MIN_VALUE, noNaN: true }), (name, amount) => {
        expect(budget.Check({ [name]: amount })).toBe(false);
      }),
    );
  });
});

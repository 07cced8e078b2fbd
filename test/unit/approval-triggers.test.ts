import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ApprovalTriggers } from "../../src/approvals/approval-config.js";
import { evaluateTriggers, type TriggerFacts } from "../../src/approvals/triggers/evaluate.js";
import { compilePayloadPattern, nestsRepeats } from "../../src/approvals/triggers/payload-patterns.js";
import { isTrustedUser } from "../../src/approvals/triggers/trusted-users.js";

/** A call no trigger has any reason to stop. */
const QUIET: TriggerFacts = {
  estimatedCost: 0,
  environment: "development",
  input: "Summarise ticket 42",
  calledBefore: true,
  callsByUserInWindow: 0,
};

const reasons = (triggers: ApprovalTriggers, facts: Partial<TriggerFacts> = {}) =>
  evaluateTriggers(triggers, { ...QUIET, ...facts });

describe("evaluateTriggers", () => {
  it("needs no approval when no trigger is set", () => {
    expect(reasons({}, { estimatedCost: 1e9, input: "4111 1111 1111 1111", calledBefore: false })).toEqual(
      [],
    );
  });

  describe("cost_threshold", () => {
    it("fires only above the threshold", () => {
      expect(reasons({ cost_threshold: 10 }, { estimatedCost: 10 })).toEqual([]);
      expect(reasons({ cost_threshold: 10 }, { estimatedCost: 10.01 })).toEqual([
        "estimated cost 10.01 is above the threshold of 10",
      ]);
    });

    it("fires exactly when the cost exceeds the threshold", () => {
      fc.assert(
        fc.property(
          fc.double({ min: 0, max: 1e6, noNaN: true }),
          fc.double({ min: 0, max: 1e6, noNaN: true }),
          (threshold, cost) => {
            expect(reasons({ cost_threshold: threshold }, { estimatedCost: cost }).length > 0).toBe(
              cost > threshold,
            );
          },
        ),
      );
    });

    it("with a threshold of 0 fires for any paid call, never for a free one", () => {
      expect(reasons({ cost_threshold: 0 }, { estimatedCost: 0 })).toEqual([]);
      expect(reasons({ cost_threshold: 0 }, { estimatedCost: 0.0001 })).toHaveLength(1);
    });
  });

  describe("first_invocation", () => {
    it("fires when the user has no earlier call to this agent", () => {
      expect(reasons({ first_invocation: true }, { calledBefore: false })).toEqual([
        "first call by this user to this agent",
      ]);
    });

    it("does not fire from the second call on, when off, or for an anonymous caller", () => {
      expect(reasons({ first_invocation: true }, { calledBefore: true })).toEqual([]);
      expect(reasons({ first_invocation: false }, { calledBefore: false })).toEqual([]);
      expect(reasons({ first_invocation: true }, { calledBefore: undefined })).toEqual([]);
    });
  });

  describe("environments", () => {
    it("fires for a listed environment", () => {
      expect(reasons({ environments: ["staging", "production"] }, { environment: "production" })).toEqual([
        'calls in the "production" environment need approval',
      ]);
    });

    it("compares exactly, as environment policy conditions do", () => {
      expect(reasons({ environments: ["production"] }, { environment: "Production" })).toEqual([]);
      expect(reasons({ environments: ["production"] }, { environment: "production-eu" })).toEqual([]);
      expect(reasons({ environments: [] }, { environment: "production" })).toEqual([]);
    });
  });

  describe("payload_patterns", () => {
    it("matches without regard to case, anywhere in the input", () => {
      expect(
        reasons({ payload_patterns: ["drop\\s+table"] }, { input: "please DROP   Table users" }),
      ).toEqual(["input matches payload pattern /drop\\s+table/"]);
      expect(reasons({ payload_patterns: ["^delete"] }, { input: "Delete everything" })).toHaveLength(1);
      expect(reasons({ payload_patterns: ["^delete"] }, { input: "do not delete" })).toEqual([]);
    });

    it("gives one reason per matching pattern", () => {
      expect(
        reasons({ payload_patterns: ["refund", "wire", "transfer"] }, { input: "Wire transfer now" }),
      ).toEqual(["input matches payload pattern /wire/", "input matches payload pattern /transfer/"]);
    });

    it("matches case-insensitively for any literal word", () => {
      fc.assert(
        fc.property(fc.stringMatching(/^[a-z]{1,12}$/), fc.boolean(), (word, upper) => {
          const input = `say ${upper ? word.toUpperCase() : word} now`;
          expect(reasons({ payload_patterns: [word] }, { input })).toHaveLength(1);
        }),
      );
    });

    it("fails closed on a pattern that could not have been saved", () => {
      expect(reasons({ payload_patterns: ["(a+)+$"] }, { input: "unrelated" })).toEqual([
        "payload pattern /(a+)+$/ cannot be used (it repeats a group that itself holds a repeat, as in (a+)+, which can take exponential time; rewrite it without the nested repeat)",
      ]);
    });
  });

  describe("sensitive_data", () => {
    it("names each kind found, never the data", () => {
      const input = "card 4111 1111 1111 1111, password=hunter2, again 5555 5555 5555 4444";
      expect(reasons({ sensitive_data: true }, { input })).toEqual([
        "input contains sensitive data: card number, password",
      ]);
    });

    it("does not fire for clean input, or when off", () => {
      expect(reasons({ sensitive_data: true })).toEqual([]);
      expect(reasons({ sensitive_data: false }, { input: "ssn 123-45-6789" })).toEqual([]);
    });
  });

  describe("rate", () => {
    it("lets N calls in a window through and stops the (N+1)th", () => {
      const rate = { max_calls: 3, window: "1h" };
      expect(reasons({ rate }, { callsByUserInWindow: 2 })).toEqual([]);
      expect(reasons({ rate }, { callsByUserInWindow: 3 })).toEqual([
        "more than 3 calls by this user within 1h",
      ]);
      expect(reasons({ rate }, { callsByUserInWindow: 30 })).toHaveLength(1);
    });

    it("fires exactly when the earlier calls in the window reach max_calls", () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 1000 }), fc.nat(2000), (max, earlier) => {
          const fired = reasons({ rate: { max_calls: max, window: 60 } }, { callsByUserInWindow: earlier });
          expect(fired.length > 0).toBe(earlier + 1 > max);
        }),
      );
    });

    it("writes a window given in seconds with its unit, and never fires for an anonymous caller", () => {
      expect(reasons({ rate: { max_calls: 1, window: 90 } }, { callsByUserInWindow: 1 })).toEqual([
        "more than 1 call by this user within 90s",
      ]);
      expect(reasons({ rate: { max_calls: 1, window: 90 } }, { callsByUserInWindow: undefined })).toEqual([]);
    });
  });

  it("lists every trigger that fired, in a fixed order", () => {
    const triggers: ApprovalTriggers = {
      cost_threshold: 1,
      first_invocation: true,
      environments: ["production"],
      payload_patterns: ["refund"],
      sensitive_data: true,
      rate: { max_calls: 1, window: "15m" },
    };
    const facts: TriggerFacts = {
      estimatedCost: 2,
      environment: "production",
      input: "refund to card 4111111111111111",
      calledBefore: false,
      callsByUserInWindow: 1,
    };
    expect(evaluateTriggers(triggers, facts)).toEqual([
      "estimated cost 2 is above the threshold of 1",
      "first call by this user to this agent",
      'calls in the "production" environment need approval',
      "input matches payload pattern /refund/",
      "input contains sensitive data: card number",
      "more than 1 call by this user within 15m",
    ]);
  });
});

describe("compilePayloadPattern", () => {
  it("compiles once per pattern text, case-insensitive and in Unicode mode", () => {
    const first = compilePayloadPattern("ticket-\\d+");
    expect(first).toEqual({ regex: /ticket-\d+/iu });
    expect(compilePayloadPattern("ticket-\\d+")).toBe(first);
  });

  it.each([
    ["an unterminated group", "(abc", /^is not a valid regular expression: /],
    ["an escape Unicode mode refuses", "a\\-b", /^is not a valid regular expression: /],
    ["a pattern over 200 characters", "a".repeat(201), /^is longer than 200 characters$/],
    ["a nested repeat", "(\\w+\\s?)*$", /^repeats a group that itself holds a repeat/],
  ])("refuses %s", (_, pattern, error) => {
    const compiled = compilePayloadPattern(pattern);
    expect("error" in compiled && compiled.error).toMatch(error);
  });

  it("accepts a pattern of exactly 200 characters", () => {
    expect(compilePayloadPattern("a".repeat(200))).toHaveProperty("regex");
  });
});

describe("nestsRepeats", () => {
  it.each([
    ["(a+)+", true],
    ["(a*)*", true],
    ["(\\w+\\s?)*", true],
    ["(a{2,5})+", true],
    ["(a+){2}", true],
    ["((a)+b)+", true],
    ["(?:x+y)*", true],
    ["([a-z]+\\.)+com", true],
    ["(ab)+", false],
    ["a+b+c*", false],
    ["(a+)?", false],
    ["(a+){1}", false],
    ["(a){2}", false],
    ["[(a+)]+", false],
    ["\\(a+\\)+", false],
    ["(?:x*)y{3}", false],
    ["\\p{L}+", false],
  ])("%s → %s", (pattern, nested) => {
    expect(nestsRepeats(pattern)).toBe(nested);
  });
});

describe("isTrustedUser", () => {
  const trusted = ["u-123", "Ada@Example.org"];

  it("matches the user id exactly and the e-mail address without case", () => {
    expect(isTrustedUser(trusted, { userId: "u-123" })).toBe(true);
    expect(isTrustedUser(trusted, { userId: "U-123" })).toBe(false);
    expect(isTrustedUser(trusted, { userEmail: "ada@example.ORG" })).toBe(true);
    expect(isTrustedUser(trusted, { userId: "u-9", userEmail: "bob@example.org" })).toBe(false);
  });

  it("trusts nobody without a list or without an identity", () => {
    expect(isTrustedUser(undefined, { userId: "u-123" })).toBe(false);
    expect(isTrustedUser([], { userId: "u-123" })).toBe(false);
    expect(isTrustedUser(trusted, {})).toBe(false);
  });
});

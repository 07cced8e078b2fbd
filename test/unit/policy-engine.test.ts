import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { CombiningStrategy } from "../../src/governance/policies/policy-context.js";
import { type EvaluablePolicy, evaluatePolicies } from "../../src/governance/policies/policy-engine.js";
import { policyContext, storedPolicy } from "../helpers/policies.js";

const ctx = policyContext();
const inProduction = [{ type: "environments", values: ["production"] }];
const inStaging = [{ type: "environments", values: ["staging"] }];

const allowAll = (overrides: Partial<EvaluablePolicy> = {}) =>
  storedPolicy({ name: "allow-all", effect: "allow", ...overrides });
const denyProduction = (overrides: Partial<EvaluablePolicy> = {}) =>
  storedPolicy({ name: "deny-production", effect: "deny", conditions: inProduction, ...overrides });

describe("without policies", () => {
  it("allows when the organization has no policy", () => {
    expect(evaluatePolicies([], "deny_overrides", ctx)).toEqual({
      allowed: true,
      reason: "no policies",
      matchedPolicies: [],
      decidingPolicyIds: [],
    });
  });

  it("treats disabled policies as absent", () => {
    const decision = evaluatePolicies([denyProduction({ enabled: false })], "deny_overrides", ctx);
    expect(decision).toMatchObject({ allowed: true, reason: "no policies" });
  });

  it("denies when policies exist but none matches", () => {
    const staging = storedPolicy({ conditions: inStaging });
    for (const strategy of ["deny_overrides", "allow_overrides", "first_match"] as const) {
      expect(evaluatePolicies([staging], strategy, ctx)).toEqual({
        allowed: false,
        reason: "no policy matched",
        matchedPolicies: [],
        decidingPolicyIds: [],
      });
    }
  });
});

describe("deny_overrides", () => {
  it("lets a matching deny win over a matching allow of higher priority", () => {
    const allow = allowAll({ priority: 100 });
    const deny = denyProduction({ priority: 1 });
    const decision = evaluatePolicies([deny, allow], "deny_overrides", ctx);
    expect(decision).toEqual({
      allowed: false,
      reason: 'denied by policy "deny-production"',
      matchedPolicies: [
        { id: allow.id, name: "allow-all", effect: "allow" },
        { id: deny.id, name: "deny-production", effect: "deny" },
      ],
      decidingPolicyIds: [deny.id],
    });
  });

  it("allows when only allows match, naming all of them", () => {
    const first = allowAll({ name: "a" });
    const second = allowAll({ name: "b", conditions: [{ type: "roles", values: ["admin"] }] });
    const decision = evaluatePolicies(
      [first, second, denyProduction({ conditions: inStaging })],
      "deny_overrides",
      ctx,
    );
    expect(decision).toMatchObject({
      allowed: true,
      reason: 'allowed by policies "a", "b"',
      decidingPolicyIds: [first.id, second.id],
    });
  });
});

describe("allow_overrides", () => {
  it("lets a matching allow win over a matching deny", () => {
    const allow = allowAll({ priority: -5 });
    const deny = denyProduction({ priority: 5 });
    const decision = evaluatePolicies([deny, allow], "allow_overrides", ctx);
    expect(decision).toMatchObject({
      allowed: true,
      reason: 'allowed by policy "allow-all"',
      decidingPolicyIds: [allow.id],
    });
    expect(decision.matchedPolicies.map((policy) => policy.id)).toEqual([deny.id, allow.id]);
  });

  it("denies when only denies match", () => {
    const deny = denyProduction();
    expect(evaluatePolicies([deny], "allow_overrides", ctx)).toMatchObject({
      allowed: false,
      reason: 'denied by policy "deny-production"',
      decidingPolicyIds: [deny.id],
    });
  });
});

describe("first_match", () => {
  it("lets the matching policy of highest priority decide", () => {
    const high = denyProduction({ priority: 10 });
    const low = allowAll({ priority: 1 });
    const skipped = allowAll({ priority: 50, conditions: inStaging });
    expect(evaluatePolicies([low, skipped, high], "first_match", ctx)).toEqual({
      allowed: false,
      reason: 'first matching policy "deny-production" denies',
      matchedPolicies: [{ id: high.id, name: "deny-production", effect: "deny" }],
      decidingPolicyIds: [high.id],
    });
  });

  it("breaks priority ties by id", () => {
    const earlier = allowAll({ name: "earlier" });
    const later = denyProduction({ name: "later" });
    expect(evaluatePolicies([later, earlier], "first_match", ctx)).toMatchObject({
      allowed: true,
      reason: 'first matching policy "earlier" allows',
    });
  });

  it("does not evaluate policies after the first match", () => {
    const broken = storedPolicy({ priority: -1, conditions: [{ type: "ip_ranges", values: ["bad"] }] });
    expect(evaluatePolicies([allowAll(), broken], "first_match", ctx).allowed).toBe(true);
  });
});

describe("failing closed", () => {
  it.each([
    [
      "bad stored conditions",
      { conditions: [{ type: "ip_ranges", values: ["10.0.0.0/99"] }] },
      "invalid stored conditions",
    ],
    ["an unknown effect", { effect: "maybe" }, 'unknown effect "maybe"'],
    ["invalid Cedar", { cedar: "permit(principal, action, resource" }, "invalid Cedar"],
    [
      "a Cedar effect that disagrees",
      { effect: "allow", cedar: "forbid(principal, action, resource);" },
      "disagrees",
    ],
    [
      "Cedar and conditions together",
      { cedar: "permit(principal, action, resource);", conditions: inProduction },
      "both",
    ],
    [
      "a Cedar runtime error",
      { cedar: 'permit(principal, action, resource) when { principal.nope == "x" };' },
      "nope",
    ],
  ])("denies on %s, naming the policy", (_label, overrides, message) => {
    const broken = storedPolicy({ name: "broken", ...overrides });
    const allow = allowAll({ priority: 10 });
    const decision = evaluatePolicies([allow, broken], "allow_overrides", ctx);
    expect(decision.allowed).toBe(false);
    expect(decision.reason).toContain(`policy "broken" (${broken.id}) could not be evaluated`);
    expect(decision.reason).toContain(message);
    expect(decision.decidingPolicyIds).toEqual([broken.id]);
    expect(decision.matchedPolicies.map((policy) => policy.id)).toEqual([allow.id]);
  });

  it("denies on an unknown combining strategy", () => {
    const decision = evaluatePolicies([allowAll()], "most_votes" as CombiningStrategy, ctx);
    expect(decision).toMatchObject({ allowed: false, reason: 'unknown combining strategy "most_votes"' });
  });

  it("denies when the context itself is broken", () => {
    const roles = storedPolicy({ conditions: [{ type: "roles", values: ["admin"] }] });
    const broken = { ...ctx, roles: undefined as unknown as string[] };
    expect(evaluatePolicies([roles], "deny_overrides", broken).allowed).toBe(false);
  });

  it("never throws, whatever is stored", () => {
    const stored = fc.record({
      effect: fc.oneof(fc.constantFrom("allow", "deny"), fc.string()),
      priority: fc.integer(),
      enabled: fc.boolean(),
      conditions: fc.oneof(fc.array(fc.anything(), { maxLength: 3 }), fc.constant(inProduction)),
      cedar: fc.oneof(fc.constant(null), fc.string(), fc.constant("permit(principal, action, resource);")),
    });
    const strategy = fc.constantFrom<CombiningStrategy>("deny_overrides", "allow_overrides", "first_match");
    fc.assert(
      fc.property(fc.array(stored, { maxLength: 4 }), strategy, (rows, chosen) => {
        const decision = evaluatePolicies(
          rows.map((row) => storedPolicy(row as Partial<EvaluablePolicy>)),
          chosen,
          ctx,
        );
        expect(typeof decision.allowed).toBe("boolean");
        expect(typeof decision.reason).toBe("string");
      }),
    );
  });
});

describe("strategies, as properties", () => {
  const environment = fc.constantFrom("production", "staging");
  const rule = fc.record({
    effect: fc.constantFrom("allow", "deny"),
    priority: fc.integer({ min: -3, max: 3 }),
    environment,
  });
  const build = (rules: Array<{ effect: string; priority: number; environment: string }>) =>
    rules.map((r) =>
      storedPolicy({
        effect: r.effect,
        priority: r.priority,
        conditions: [{ type: "environments", values: [r.environment] }],
      }),
    );

  it("deny_overrides allows exactly when some allow and no deny matches", () => {
    fc.assert(
      fc.property(fc.array(rule, { minLength: 1, maxLength: 6 }), environment, (rules, current) => {
        const matching = rules.filter((r) => r.environment === current);
        const expected =
          matching.some((r) => r.effect === "allow") && !matching.some((r) => r.effect === "deny");
        expect(
          evaluatePolicies(build(rules), "deny_overrides", policyContext({ environment: current })).allowed,
        ).toBe(expected);
      }),
    );
  });

  it("allow_overrides allows exactly when some allow matches", () => {
    fc.assert(
      fc.property(fc.array(rule, { minLength: 1, maxLength: 6 }), environment, (rules, current) => {
        const expected = rules.some((r) => r.environment === current && r.effect === "allow");
        expect(
          evaluatePolicies(build(rules), "allow_overrides", policyContext({ environment: current })).allowed,
        ).toBe(expected);
      }),
    );
  });

  it("first_match follows the matching policy of highest priority, then lowest id", () => {
    fc.assert(
      fc.property(fc.array(rule, { minLength: 1, maxLength: 6 }), environment, (rules, current) => {
        const policies = build(rules);
        const first = policies
          .filter((_, index) => rules[index]?.environment === current)
          .sort((a, b) => b.priority - a.priority || (a.id < b.id ? -1 : 1))[0];
        const decision = evaluatePolicies(policies, "first_match", policyContext({ environment: current }));
        expect(decision.allowed).toBe(first?.effect === "allow");
        expect(decision.decidingPolicyIds).toEqual(first ? [first.id] : []);
      }),
    );
  });
});

describe("mixed JSON and Cedar policies", () => {
  it("combines both kinds in one priority order", () => {
    const cedarDeny = storedPolicy({
      name: "no-tier1-for-viewers",
      effect: "deny",
      priority: 5,
      cedar:
        'forbid(principal, action, resource) when { resource.tags.contains("tier1") && principal.roles.contains("viewer") };',
    });
    const cedarAllow = storedPolicy({
      name: "admins",
      effect: "allow",
      priority: 1,
      cedar: 'permit(principal, action, resource) when { principal.roles.contains("admin") };',
    });
    const jsonAllow = allowAll({ priority: 3, conditions: inProduction });
    const policies = [cedarAllow, cedarDeny, jsonAllow];

    const admin = evaluatePolicies(policies, "deny_overrides", ctx);
    expect(admin.allowed).toBe(true);
    expect(admin.matchedPolicies.map((policy) => policy.id)).toEqual([jsonAllow.id, cedarAllow.id]);

    const viewer = evaluatePolicies(policies, "deny_overrides", policyContext({ roles: ["viewer"] }));
    expect(viewer).toMatchObject({ allowed: false, decidingPolicyIds: [cedarDeny.id] });
    expect(
      evaluatePolicies(policies, "first_match", policyContext({ roles: ["viewer"] })).decidingPolicyIds,
    ).toEqual([cedarDeny.id]);
  });
});

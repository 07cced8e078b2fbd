import { describe, expect, it } from "vitest";
import { evaluateCedarPolicies, parseCedarPolicy } from "../../src/governance/policies/cedar.js";
import type { PolicyContext } from "../../src/governance/policies/policy-context.js";
import { policyContext } from "../helpers/policies.js";

/** The outcome of one Cedar policy text for a call shaped by `overrides`. */
function outcome(cedar: string, overrides: Partial<PolicyContext> = {}) {
  return evaluateCedarPolicies([{ id: "pol_one", cedar }], policyContext(overrides)).get("pol_one");
}

const when = (condition: string) => `permit(principal, action, resource) when { ${condition} };`;

describe("parseCedarPolicy", () => {
  it("gives the effect of a permit and of a forbid", () => {
    expect(parseCedarPolicy(when('principal.roles.contains("admin")'))).toMatchObject({
      ok: true,
      effect: "allow",
    });
    expect(parseCedarPolicy("forbid(principal, action, resource);")).toMatchObject({
      ok: true,
      effect: "deny",
    });
  });

  it("answers with Cedar's message, and where the mistake is", () => {
    const parsed = parseCedarPolicy("permit(principal, action, resource)\nwhen { principal.team == };");
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.message).toContain("unexpected token `}`");
    expect(parsed.message).toContain("at 2:26");
  });

  it("refuses anything but exactly one static policy", () => {
    expect(parseCedarPolicy("")).toEqual({ ok: false, message: "must hold exactly one policy, found 0" });
    expect(
      parseCedarPolicy("permit(principal, action, resource); forbid(principal, action, resource);"),
    ).toEqual({
      ok: false,
      message: "must hold exactly one policy, found 2",
    });
    expect(parseCedarPolicy("permit(principal == ?principal, action, resource);")).toMatchObject({
      ok: false,
      message: expect.stringContaining("templates"),
    });
  });
});

describe("evaluateCedarPolicies", () => {
  it("matches on the principal's roles and team", () => {
    expect(outcome(when('principal.roles.contains("admin")'))).toEqual({ matched: true });
    expect(outcome(when('principal.roles.contains("admin")'), { roles: ["viewer"] })).toEqual({
      matched: false,
    });
    expect(outcome(when('principal.team == "payments"'))).toEqual({ matched: true });
    expect(outcome(when('principal.team == ""'), { team: null })).toEqual({ matched: true });
    expect(outcome(when('principal.organization == "org_test" && principal.type == "api_key"'))).toEqual({
      matched: true,
    });
    expect(outcome('permit(principal == Steward::Principal::"key_test", action, resource);')).toEqual({
      matched: true,
    });
  });

  it("matches on the agent's tags, name and platform", () => {
    const tier1 =
      'forbid(principal, action == Steward::Action::"invoke", resource) when { resource.tags.contains("tier1") };';
    expect(outcome(tier1)).toEqual({ matched: true });
    expect(outcome(tier1, { agent: { id: "agt_x", name: "x", platform: "slack", tags: [] } })).toEqual({
      matched: false,
    });
    expect(outcome(when('resource.name == "support-bot" && resource.platform == "slack"'))).toEqual({
      matched: true,
    });
    expect(outcome("permit(principal, action, resource is Steward::Agent);")).toEqual({ matched: true });
  });

  it("matches on the context: environment, external identity, time and ip", () => {
    expect(outcome(when('context.environment == "production"'))).toEqual({ matched: true });
    expect(outcome(when('context.environment == "production"'), { environment: "staging" })).toEqual({
      matched: false,
    });
    expect(
      outcome(when('context.external_system == "zendesk" && context.external_user_id == "u-42"')),
    ).toEqual({ matched: true });
    expect(outcome(when('context.external_system == ""'), { externalSystem: undefined })).toEqual({
      matched: true,
    });
    expect(outcome(when('context.now > datetime("2024-06-04T10:00:00Z")'))).toEqual({ matched: true });
    expect(outcome(when('context.ip.isInRange(ip("10.0.0.0/8"))'))).toEqual({ matched: true });
    expect(outcome(when('context.ip.isInRange(ip("10.0.0.0/8"))'), { ip: "::ffff:10.9.9.9" })).toEqual({
      matched: true,
    });
    expect(
      outcome(when('context has ip && context.ip.isInRange(ip("10.0.0.0/8"))'), { ip: undefined }),
    ).toEqual({
      matched: false,
    });
  });

  it("exposes the attributes under their own names", () => {
    expect(outcome(when('context.context.department == "finance"'))).toEqual({ matched: true });
    const attributes = { metadata: { priority: 3, tags: ["a", "b"], nested: { deep: true } } };
    expect(
      outcome(
        when(
          'context.metadata.priority == 3 && context.metadata.tags.contains("b") && context.metadata.nested.deep',
        ),
        {
          attributes,
        },
      ),
    ).toEqual({ matched: true });
  });

  it("keeps Steward's fields over attributes of the same name", () => {
    const attributes = { environment: "production", ip: "10.0.0.1" };
    expect(
      outcome(when('context.environment == "production"'), { environment: "staging", attributes }),
    ).toEqual({
      matched: false,
    });
    expect(outcome(when("context has ip"), { ip: undefined, attributes })).toEqual({ matched: false });
  });

  it("drops what Cedar cannot hold, and entity escapes smuggled in attributes", () => {
    const attributes = {
      metadata: {
        score: 1.5,
        none: null,
        owner: { __entity: { type: "Steward::Principal", id: "key_admin" } },
        when: { __extn: { fn: "datetime", arg: "2030-01-01" } },
      },
    };
    expect(outcome(when("context.metadata has score || context.metadata has none"), { attributes })).toEqual({
      matched: false,
    });
    expect(
      outcome(when('context.metadata.owner == Steward::Principal::"key_admin"'), { attributes }),
    ).toEqual({
      matched: false,
    });
    expect(outcome(when("context.metadata.owner has __entity"), { attributes })).toEqual({ matched: false });
  });

  it("reports an evaluation error for the failing policy only", () => {
    const outcomes = evaluateCedarPolicies(
      [
        { id: "pol_bad", cedar: when('principal.department == "x"') },
        { id: "pol_good", cedar: when('principal.roles.contains("admin")') },
        { id: "pol_unparsable", cedar: "permit(" },
      ],
      policyContext(),
    );
    expect(outcomes.get("pol_bad")).toEqual({ error: expect.stringContaining("department") });
    expect(outcomes.get("pol_good")).toEqual({ matched: true });
    expect(outcomes.get("pol_unparsable")).toEqual({ error: expect.stringContaining("invalid Cedar") });
  });

  it("sees a changed policy text under the same id", () => {
    const ctx = policyContext({
      principal: { type: "api_key", id: "key_test", organizationId: "org_changes" },
    });
    const first = evaluateCedarPolicies(
      [{ id: "pol_same", cedar: when('context.environment == "production"') }],
      ctx,
    );
    const second = evaluateCedarPolicies(
      [{ id: "pol_same", cedar: when('context.environment == "staging"') }],
      ctx,
    );
    expect(first.get("pol_same")).toEqual({ matched: true });
    expect(second.get("pol_same")).toEqual({ matched: false });
  });
});

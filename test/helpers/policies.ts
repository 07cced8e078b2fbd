import type { PolicyContext } from "../../src/governance/policies/policy-context.js";
import type { EvaluablePolicy } from "../../src/governance/policies/policy-engine.js";

/** A call from an admin key in production, Tuesday 2024-06-04 10:30 UTC, from 10.1.2.3. */
export function policyContext(overrides: Partial<PolicyContext> = {}): PolicyContext {
  return {
    environment: "production",
    ip: "10.1.2.3",
    roles: ["admin"],
    team: "payments",
    externalSystem: "zendesk",
    externalUserId: "u-42",
    externalUserEmail: "Ada@Example.com",
    now: new Date("2024-06-04T10:30:00Z"),
    attributes: { context: { department: "finance" }, metadata: {}, external_context: {} },
    principal: { type: "api_key", id: "key_test", organizationId: "org_test" },
    agent: { id: "agt_test", name: "support-bot", platform: "slack", tags: ["support", "tier1"] },
    ...overrides,
  };
}

let sequence = 0;

/** A stored policy as evaluation reads it; ids sort in creation order. */
export function storedPolicy(overrides: Partial<EvaluablePolicy> = {}): EvaluablePolicy {
  sequence += 1;
  return {
    id: `pol_${String(sequence).padStart(6, "0")}`,
    name: `policy-${sequence}`,
    effect: "allow",
    priority: 0,
    enabled: true,
    conditions: [],
    cedar: null,
    ...overrides,
  };
}

import type { PolicyRow } from "../../db/schema.js";
import { type CedarOutcome, evaluateCedarPolicies, type PolicyEffect, parseCedarPolicy } from "./cedar.js";
import { parseConditions } from "./condition-parser.js";
import { type ConditionCheck, compileConditions } from "./conditions.js";
import type { CombiningStrategy, PolicyContext, PolicyDecision } from "./policy-context.js";

/**
 * Decides whether an organization's policies allow one call. Pure and synchronous, and
 * it never throws: whatever goes wrong denies the call, with a reason naming the policy.
 */

/** What evaluation reads of a stored policy. Rows are treated as immutable. */
export type EvaluablePolicy = Pick<
  PolicyRow,
  "id" | "name" | "effect" | "priority" | "enabled" | "conditions" | "cedar"
>;

const COMBINING_STRATEGIES: readonly CombiningStrategy[] = [
  "deny_overrides",
  "allow_overrides",
  "first_match",
];

type Matched = PolicyDecision["matchedPolicies"][number];
type Match = { matched: boolean; effect: PolicyEffect } | { error: string };

// Compiling conditions (a BlockList per ip_ranges condition) is worth doing once per row
// object; PolicyService hands out the same objects for as long as it caches them.
const compiled = new WeakMap<EvaluablePolicy, { check: ConditionCheck } | { error: string }>();

function conditionsOf(policy: EvaluablePolicy): { check: ConditionCheck } | { error: string } {
  let entry = compiled.get(policy);
  if (!entry) {
    const { conditions, errors } = parseConditions(policy.conditions);
    entry =
      errors.length > 0
        ? { error: `invalid stored conditions: ${errors.map((e) => `${e.field} ${e.message}`).join("; ")}` }
        : { check: compileConditions(conditions) };
    compiled.set(policy, entry);
  }
  return entry;
}

/** Matches policies one by one; the Cedar ones are decided together, on first need. */
function createMatcher(
  ordered: readonly EvaluablePolicy[],
  ctx: PolicyContext,
): (policy: EvaluablePolicy) => Match {
  let cedarOutcomes: Map<string, CedarOutcome> | undefined;
  const matchCedar = (policy: EvaluablePolicy, cedar: string, stored: PolicyEffect): Match => {
    const parsed = parseCedarPolicy(cedar);
    if (!parsed.ok) return { error: `invalid Cedar: ${parsed.message}` };
    if (parsed.effect !== stored) {
      return { error: `stored effect ${stored} disagrees with the Cedar policy's ${parsed.effect}` };
    }
    cedarOutcomes ??= evaluateCedarPolicies(
      ordered.flatMap((p) => (p.cedar === null ? [] : [{ id: p.id, cedar: p.cedar }])),
      ctx,
    );
    const outcome = cedarOutcomes.get(policy.id) ?? { error: "Cedar returned no outcome" };
    return "error" in outcome ? outcome : { matched: outcome.matched, effect: parsed.effect };
  };
  return (policy) => {
    const effect = policy.effect;
    if (effect !== "allow" && effect !== "deny") return { error: `unknown effect "${effect}"` };
    if (policy.cedar !== null) {
      if (policy.conditions.length > 0) return { error: "has both conditions and Cedar" };
      return matchCedar(policy, policy.cedar, effect);
    }
    const conditions = conditionsOf(policy);
    return "error" in conditions ? conditions : { matched: conditions.check(ctx), effect };
  };
}

function names(policies: readonly Matched[]): string {
  const quoted = policies.map((policy) => `"${policy.name}"`).join(", ");
  return policies.length === 1 ? `policy ${quoted}` : `policies ${quoted}`;
}

function deny(reason: string, matchedPolicies: Matched[], deciding: Matched[]): PolicyDecision {
  return { allowed: false, reason, matchedPolicies, decidingPolicyIds: deciding.map((policy) => policy.id) };
}

/** deny_overrides and allow_overrides, once every policy has been matched. */
function combine(strategy: CombiningStrategy, matched: Matched[]): PolicyDecision {
  const denies = matched.filter((policy) => policy.effect === "deny");
  const allows = matched.filter((policy) => policy.effect === "allow");
  const [overriding, other] = strategy === "allow_overrides" ? [allows, denies] : [denies, allows];
  const winner = overriding.length > 0 ? overriding : other;
  if (winner.length === 0) return deny("no policy matched", matched, []);
  const allowed = winner[0]?.effect === "allow";
  return {
    allowed,
    reason: `${allowed ? "allowed" : "denied"} by ${names(winner)}`,
    matchedPolicies: matched,
    decidingPolicyIds: winner.map((policy) => policy.id),
  };
}

function byPriority(a: EvaluablePolicy, b: EvaluablePolicy): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function decide(
  policies: readonly EvaluablePolicy[],
  strategy: CombiningStrategy,
  ctx: PolicyContext,
): PolicyDecision {
  if (!COMBINING_STRATEGIES.includes(strategy))
    return deny(`unknown combining strategy "${strategy}"`, [], []);
  const ordered = policies.filter((policy) => policy.enabled).sort(byPriority);
  if (ordered.length === 0) {
    return { allowed: true, reason: "no policies", matchedPolicies: [], decidingPolicyIds: [] };
  }
  const match = createMatcher(ordered, ctx);
  const matched: Matched[] = [];
  for (const policy of ordered) {
    let outcome: Match;
    try {
      outcome = match(policy);
    } catch (error) {
      outcome = { error: error instanceof Error ? error.message : String(error) };
    }
    const self = { id: policy.id, name: policy.name, effect: policy.effect as PolicyEffect };
    if ("error" in outcome) {
      return deny(
        `policy "${policy.name}" (${policy.id}) could not be evaluated: ${outcome.error}`,
        matched,
        [self],
      );
    }
    if (!outcome.matched) continue;
    matched.push(self);
    if (strategy === "first_match") {
      const verb = outcome.effect === "allow" ? "allows" : "denies";
      return {
        allowed: outcome.effect === "allow",
        reason: `first matching policy "${policy.name}" ${verb}`,
        matchedPolicies: matched,
        decidingPolicyIds: [policy.id],
      };
    }
  }
  return combine(strategy, matched);
}

/**
 * Evaluates `policies` (disabled ones are skipped) in order of priority, highest first,
 * then id. No enabled policy allows; policies of which none matches deny.
 */
export function evaluatePolicies(
  policies: readonly EvaluablePolicy[],
  strategy: CombiningStrategy,
  ctx: PolicyContext,
): PolicyDecision {
  try {
    return decide(policies, strategy, ctx);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return deny(`policies could not be evaluated: ${message}`, [], []);
  }
}

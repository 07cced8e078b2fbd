import { createRequire } from "node:module";
import type {
  CedarValueJson,
  Context,
  DetailedError,
  Entities,
  PolicyJson,
} from "@cedar-policy/cedar-wasm/nodejs";
import { normalizeAddress } from "./conditions.js";
import type { PolicyContext } from "./policy-context.js";

/**
 * Organization policies written in Cedar: validation at write time, evaluation at
 * invocation. The request Cedar sees (documented in docs/policies.md) is
 *   principal  Steward::Principal::"<key or JWT subject>"  {roles, team, organization, type}
 *   action     Steward::Action::"invoke"
 *   resource   Steward::Agent::"<agent id>"               {name, platform, tags}
 *   context    {environment, ip?, external_system, external_user_id, external_user_email, now, ...attributes}
 */

export type PolicyEffect = "allow" | "deny";

export type CedarParse =
  | {
      ok: true;
      effect: PolicyEffect /** The policy as a permit, see evaluateCedarPolicies. */;
      asPermit: PolicyJson;
    }
  | { ok: false; message: string };

export type CedarOutcome = { matched: boolean } | { error: string };

export interface CedarPolicy {
  id: string;
  cedar: string;
}

type CedarWasm = typeof import("@cedar-policy/cedar-wasm/nodejs");
const require = createRequire(import.meta.url);
// Resolved now, so that an installation without Cedar fails at start rather than on the
// first Cedar policy.
const CEDAR_MODULE = require.resolve("@cedar-policy/cedar-wasm/nodejs");
let cedarWasm: CedarWasm | undefined;

/**
 * Cedar's WebAssembly build, compiled on first use: about 20 MB a process keeps for good,
 * which most organizations, writing their policies as conditions, never need. Its Node
 * build is CommonJS and compiles synchronously, so parsing and evaluation stay synchronous.
 */
function cedar(): CedarWasm {
  cedarWasm ??= require(CEDAR_MODULE) as CedarWasm;
  return cedarWasm;
}

/** Where a Cedar error points, as "line:column", from a character offset. */
function position(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return `${line}:${offset - before.lastIndexOf("\n")}`;
}

/** Cedar's own words for what went wrong, with where and what it expected. */
function describe(errors: readonly DetailedError[], text?: string): string {
  return errors
    .map((error) => {
      const location = error.sourceLocations?.[0];
      const where = location && text !== undefined ? ` at ${position(text, location.start)}` : "";
      const hint = location?.label ?? error.help;
      return `${error.message}${where}${hint ? ` (${hint})` : ""}`;
    })
    .join("; ");
}

function parseUncached(text: string): CedarParse {
  const parts = cedar().policySetTextToParts(text);
  if (parts.type === "failure") return { ok: false, message: describe(parts.errors, text) };
  if (parts.policy_templates.length > 0) {
    return { ok: false, message: "templates (?principal or ?resource slots) are not supported" };
  }
  const [policy] = parts.policies;
  if (policy === undefined || parts.policies.length > 1) {
    return { ok: false, message: `must hold exactly one policy, found ${parts.policies.length}` };
  }
  const json = cedar().policyToJson(policy);
  if (json.type === "failure") return { ok: false, message: describe(json.errors) };
  return {
    ok: true,
    effect: json.json.effect === "permit" ? "allow" : "deny",
    asPermit: { ...json.json, effect: "permit" },
  };
}

// Parsing depends on the text alone, so the cache is keyed by text: unlike a key of id
// and updated_at, two edits within one millisecond cannot leave a stale entry behind.
const MAX_PARSED = 5000;
const parsedByText = new Map<string, CedarParse>();

/** Parses one policy text; the effect of a valid one, or Cedar's error message. */
export function parseCedarPolicy(text: string): CedarParse {
  const cached = parsedByText.get(text);
  if (cached) return cached;
  const parsed = parseUncached(text);
  if (parsedByText.size >= MAX_PARSED) {
    const oldest = parsedByText.keys().next().value;
    if (oldest !== undefined) parsedByText.delete(oldest);
  }
  parsedByText.set(text, parsed);
  return parsed;
}

const ESCAPE_KEYS = new Set(["__entity", "__extn", "__expr"]);
const MAX_DEPTH = 8;

/**
 * A JSON value as a Cedar value, or undefined for what Cedar cannot hold: null, numbers
 * that are not integers in JavaScript's safe range (Cedar has no floats), values nested
 * deeper than MAX_DEPTH. Keys Cedar would read as an entity or extension escape are dropped, so a
 * caller's metadata cannot smuggle an entity reference into a policy's context.
 */
function toCedarValue(value: unknown, depth: number): CedarValueJson | undefined {
  if (typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value !== "object" || value === null || depth > MAX_DEPTH) return undefined;
  if (Array.isArray(value)) {
    return value.map((item) => toCedarValue(item, depth + 1)).filter((item) => item !== undefined);
  }
  const record: Record<string, CedarValueJson> = {};
  for (const [key, item] of Object.entries(value)) {
    if (ESCAPE_KEYS.has(key)) continue;
    const converted = toCedarValue(item, depth + 1);
    if (converted !== undefined) record[key] = converted;
  }
  return record;
}

/**
 * Names Steward fills in the Cedar context. Reserved even when absent (ip), so that an
 * attribute a caller controls can never stand in for one of them.
 */
const CONTEXT_FIELDS = new Set([
  "environment",
  "ip",
  "external_system",
  "external_user_id",
  "external_user_email",
  "now",
]);

/** The Cedar context of a call: Steward's own fields, then the attributes under other names. */
function cedarContext(ctx: PolicyContext): Context {
  const fixed: Context = {
    environment: ctx.environment,
    // Absent strings are "" rather than missing: a policy that reads a missing attribute
    // errors, and an error denies the call.
    external_system: ctx.externalSystem ?? "",
    external_user_id: ctx.externalUserId ?? "",
    external_user_email: ctx.externalUserEmail ?? "",
    now: { __extn: { fn: "datetime", arg: ctx.now.toISOString() } },
  };
  // No ip("") exists, so an unknown address is left out: policies guard with `context has ip`.
  const caller = ctx.ip === undefined ? undefined : normalizeAddress(ctx.ip);
  if (caller) fixed.ip = { __extn: { fn: "ip", arg: caller.address } };
  const context: Context = {};
  for (const [key, value] of Object.entries(ctx.attributes)) {
    if (ESCAPE_KEYS.has(key) || CONTEXT_FIELDS.has(key)) continue;
    const converted = toCedarValue(value, 1);
    if (converted !== undefined) context[key] = converted;
  }
  return { ...context, ...fixed };
}

const PRINCIPAL_TYPE = "Steward::Principal";
const AGENT_TYPE = "Steward::Agent";
const INVOKE = { type: "Steward::Action", id: "invoke" };

function cedarEntities(ctx: PolicyContext): Entities {
  return [
    {
      uid: { type: PRINCIPAL_TYPE, id: ctx.principal.id },
      attrs: {
        roles: ctx.roles,
        team: ctx.team ?? "",
        organization: ctx.principal.organizationId,
        type: ctx.principal.type,
      },
      parents: [],
    },
    {
      uid: { type: AGENT_TYPE, id: ctx.agent.id },
      attrs: { name: ctx.agent.name, platform: ctx.agent.platform, tags: ctx.agent.tags },
      parents: [],
    },
  ];
}

// Which text each organization's pre-parsed set (kept inside the wasm module) was built
// from. One set per organization, overwritten on change, so wasm memory stays bounded.
const preparsedSets = new Map<string, string>();

/**
 * Evaluates an organization's Cedar policies for one call with a single Cedar decision.
 *
 * Steward combines policies itself (priorities, strategies), so it needs to know which
 * policies *match*, whatever their effect. Cedar reports the satisfied policies of the
 * winning effect only, so every policy is loaded as a permit: the decision's reasons are
 * then exactly the policies whose scope and conditions held. The real effect comes from
 * parseCedarPolicy. Never throws: failures are reported per policy.
 */
export function evaluateCedarPolicies(
  policies: readonly CedarPolicy[],
  ctx: PolicyContext,
): Map<string, CedarOutcome> {
  const outcomes = new Map<string, CedarOutcome>();
  const staticPolicies: Record<string, PolicyJson> = {};
  const fingerprint: string[] = [];
  for (const policy of policies) {
    const parsed = parseCedarPolicy(policy.cedar);
    if (!parsed.ok) {
      outcomes.set(policy.id, { error: `invalid Cedar: ${parsed.message}` });
      continue;
    }
    staticPolicies[policy.id] = parsed.asPermit;
    fingerprint.push(`${policy.id}\u0000${policy.cedar}`);
  }
  const ids = Object.keys(staticPolicies);
  if (ids.length === 0) return outcomes;
  const failAll = (message: string) => {
    for (const id of ids) outcomes.set(id, { error: message });
    return outcomes;
  };

  try {
    const setId = `org:${ctx.principal.organizationId}`;
    const key = fingerprint.join("\u0001");
    if (preparsedSets.get(setId) !== key) {
      preparsedSets.delete(setId);
      const prepared = cedar().preparsePolicySet(setId, { staticPolicies });
      if (prepared.type === "failure")
        return failAll(`Cedar could not load the policies: ${describe(prepared.errors)}`);
      preparsedSets.set(setId, key);
    }
    const answer = cedar().statefulIsAuthorized({
      principal: { type: PRINCIPAL_TYPE, id: ctx.principal.id },
      action: INVOKE,
      resource: { type: AGENT_TYPE, id: ctx.agent.id },
      context: cedarContext(ctx),
      entities: cedarEntities(ctx),
      preparsedPolicySetId: setId,
    });
    if (answer.type === "failure") return failAll(`Cedar evaluation failed: ${describe(answer.errors)}`);
    const satisfied = new Set(answer.response.diagnostics.reason);
    const errors = new Map(answer.response.diagnostics.errors.map((error) => [error.policyId, error.error]));
    for (const id of ids) {
      const error = errors.get(id);
      outcomes.set(id, error ? { error: describe([error]) } : { matched: satisfied.has(id) });
    }
    return outcomes;
  } catch (error) {
    return failAll(`Cedar evaluation failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}

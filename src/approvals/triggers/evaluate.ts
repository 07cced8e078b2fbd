import type { ApprovalTriggers } from "../approval-config.js";
import { compilePayloadPattern } from "./payload-patterns.js";
import { findSensitiveData, SENSITIVE_KIND_NAMES, SENSITIVE_KINDS } from "./sensitive-data.js";

/** What the triggers are evaluated against, gathered by the caller for one call. */
export interface TriggerFacts {
  estimatedCost: number;
  /** The request's `context.environment`, else the server's STEWARD_ENV. */
  environment: string;
  input: string;
  /**
   * Whether this external user called this agent before (a call that ran or waits for
   * approval); undefined when the caller is anonymous or no rule asks.
   */
  calledBefore?: boolean;
  /** How many such calls the user made within the rule's rate window; undefined likewise. */
  callsByUserInWindow?: number;
}

/**
 * Why this call needs approval, one human-readable reason per trigger that fired, in
 * a fixed order; empty when none did. Reasons never quote the input, since they are
 * shown to approvers next to the redacted summary.
 */
export function evaluateTriggers(triggers: ApprovalTriggers, facts: TriggerFacts): string[] {
  const reasons: string[] = [];
  const { cost_threshold: threshold, rate } = triggers;
  if (threshold !== undefined && facts.estimatedCost > threshold) {
    reasons.push(`estimated cost ${facts.estimatedCost} is above the threshold of ${threshold}`);
  }
  if (triggers.first_invocation && facts.calledBefore === false) {
    reasons.push("first call by this user to this agent");
  }
  if (triggers.environments?.includes(facts.environment)) {
    reasons.push(`calls in the "${facts.environment}" environment need approval`);
  }
  for (const pattern of triggers.payload_patterns ?? []) {
    const reason = patternReason(pattern, facts.input);
    if (reason) reasons.push(reason);
  }
  if (triggers.sensitive_data) {
    const reason = sensitiveDataReason(facts.input);
    if (reason) reasons.push(reason);
  }
  if (rate && facts.callsByUserInWindow !== undefined && facts.callsByUserInWindow >= rate.max_calls) {
    const window = typeof rate.window === "number" ? `${rate.window}s` : rate.window;
    const calls = rate.max_calls === 1 ? "call" : "calls";
    reasons.push(`more than ${rate.max_calls} ${calls} by this user within ${window}`);
  }
  return reasons;
}

function patternReason(pattern: string, input: string): string | null {
  const compiled = compilePayloadPattern(pattern);
  // Configuration checks refuse such a pattern, so only data stored before a check
  // existed gets here; fail closed rather than let the rule silently stop working.
  if ("error" in compiled) return `payload pattern /${pattern}/ cannot be used (it ${compiled.error})`;
  return compiled.regex.test(input) ? `input matches payload pattern /${pattern}/` : null;
}

function sensitiveDataReason(input: string): string | null {
  const kinds = new Set(findSensitiveData(input).map((match) => match.kind));
  if (kinds.size === 0) return null;
  const names = SENSITIVE_KINDS.filter((kind) => kinds.has(kind)).map((kind) => SENSITIVE_KIND_NAMES[kind]);
  return `input contains sensitive data: ${names.join(", ")}`;
}

import type { FieldError } from "../../errors.js";
import { type ApprovalConfig, durationSeconds } from "../approval-config.js";
import { compilePayloadPattern } from "./payload-patterns.js";

/**
 * Longest duration accepted anywhere in a rule. Far beyond any sensible approval
 * timeout or rate window, and far inside what a Date can hold, so an expiry computed
 * from it is always a real instant.
 */
export const MAX_DURATION_SECONDS = 365 * 86_400;

/**
 * What the schema cannot check in an approval config (assumed already
 * schema-valid): patterns that do not compile or could backtrack without end,
 * durations out of range, and a workflow nobody could complete. Fields are named
 * under `prefix` (e.g. "approval_config"), as `prefix.triggers.payload_patterns[1]`.
 */
export function approvalConfigErrors(config: ApprovalConfig, prefix: string): FieldError[] {
  const at = (path: string) => (prefix ? `${prefix}.${path}` : path);
  const errors: FieldError[] = [];
  for (const [index, pattern] of (config.triggers.payload_patterns ?? []).entries()) {
    const compiled = compilePayloadPattern(pattern);
    if ("error" in compiled) {
      errors.push({ field: at(`triggers.payload_patterns[${index}]`), message: compiled.error });
    }
  }
  const durations: Array<[string, number | string | undefined]> = [
    ["triggers.rate.window", config.triggers.rate?.window],
    ["workflow.timeout", config.workflow?.timeout],
    ["workflow.reminder_interval", config.workflow?.reminder_interval],
    ["workflow.escalation_after", config.workflow?.escalation_after],
  ];
  for (const [path, duration] of durations) {
    const message = duration === undefined ? null : durationProblem(duration);
    if (message) errors.push({ field: at(path), message });
  }
  if (config.workflow) {
    errors.push(...workflowErrors(config.workflow, (path) => at(path ? `workflow.${path}` : "workflow")));
  }
  return errors;
}

function durationProblem(duration: number | string): string | null {
  let seconds: number;
  try {
    seconds = durationSeconds(duration);
  } catch {
    return 'is not a duration: give seconds, or a number followed by s, m, h or d, such as "15m"';
  }
  if (!Number.isSafeInteger(seconds) || seconds < 1) return "must be a whole number of seconds, at least 1";
  if (seconds > MAX_DURATION_SECONDS) return "must be at most 365 days";
  return null;
}

function workflowErrors(
  workflow: NonNullable<ApprovalConfig["workflow"]>,
  at: (path: string) => string,
): FieldError[] {
  const roles = workflow.approver_roles ?? [];
  const users = new Set(workflow.approver_users ?? []);
  if (roles.length === 0 && users.size === 0) {
    return [
      { field: at(""), message: "must name at least one approver in approver_roles or approver_users" },
    ];
  }
  // With only named users and no escalation, each can approve once, so a quorum
  // larger than the list could never be reached and every request would expire.
  const required = workflow.required_approvals ?? 1;
  if (roles.length === 0 && !workflow.escalation_to?.length && required > users.size) {
    return [
      {
        field: at("required_approvals"),
        message: `is ${required}, more than the ${users.size} distinct approver_users who could approve`,
      },
    ];
  }
  return [];
}

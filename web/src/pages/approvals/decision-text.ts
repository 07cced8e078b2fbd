import { ApiError, errorMessage } from "../../api/client";
import type { DecisionAnswer } from "./approval-types";

/** A refused decision in words: why Steward said no, not just its status code. */
export function decisionErrorMessage(error: unknown): string {
  if (!(error instanceof ApiError)) return errorMessage(error);
  switch (error.status) {
    case 403:
      return `You may not decide on this request (${error.message}).`;
    case 404:
      return "This request does not exist (or belongs to another organization).";
    case 409:
      return `Already decided: ${error.message}.`;
    case 410:
      return `Expired: ${error.message}, so the call will not run.`;
    default:
      return error.message;
  }
}

/** What a decision did, from the answer to approve/reject. */
export function decisionOutcome(answer: DecisionAnswer): string {
  const { approval, approvals, invocation_status } = answer;
  const status = invocation_status.replaceAll("_", " ");
  if (approval.status === "approved") return `Approved. The call ran and ended as: ${status}.`;
  if (approval.status === "rejected") return `Rejected. The call will not run (${status}).`;
  const missing = approval.required_approvals - approvals;
  return `Your approval is recorded (${approvals} of ${approval.required_approvals}); it needs ${missing} more before the call runs.`;
}

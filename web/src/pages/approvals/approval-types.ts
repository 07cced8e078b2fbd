/** Approval requests as GET /api/v1/approvals answers them (src/approvals/approval.routes.ts). */

export type ApprovalStatus = "pending" | "approved" | "rejected" | "expired";

export interface Approval {
  id: string;
  invocation_id: string;
  external_agent_id: string;
  status: ApprovalStatus;
  reasons: string[];
  /** The input, with secrets and sensitive data masked by Steward. */
  summary: string;
  requester: { principal_id: string; external_user: string | null };
  required_approvals: number;
  approver_roles: string[];
  approver_users: string[];
  expires_at: string;
  escalated_at: string | null;
  decided_at: string | null;
  decision_reason: string | null;
  created_at: string;
}

export interface Decision {
  approver_id: string;
  decision: string;
  reason: string | null;
  created_at: string;
}

/** GET /api/v1/approvals/{id}: the request with every decision so far. */
export interface ApprovalDetail extends Approval {
  decisions: Decision[];
}

/** What POST …/approve and …/reject answer. */
export interface DecisionAnswer {
  approval: Approval;
  approvals: number;
  invocation_status: string;
}

export function approvalsSoFar(decisions: Decision[]): number {
  return decisions.filter((decision) => decision.decision === "approve").length;
}

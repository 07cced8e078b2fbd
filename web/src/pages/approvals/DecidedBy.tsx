import type { ApprovalDetail } from "./approval-types";

/** A decision's verb as an outcome ("approve" → "approved"). */
export const DECISION_OUTCOMES: Record<string, string> = { approve: "approved", reject: "rejected" };

/** Who decided a request: each approver and their verdict, or why no one did. */
export function DecidedBy({ approval }: { approval: ApprovalDetail }) {
  if (approval.decisions.length === 0)
    return <>{approval.status === "pending" ? "No one yet" : "No one (it timed out)"}</>;
  return (
    <ul className="approval-deciders">
      {approval.decisions.map((decision) => (
        <li key={`${decision.approver_id}-${decision.created_at}`}>
          <code>{decision.approver_id}</code> {DECISION_OUTCOMES[decision.decision] ?? decision.decision}
        </li>
      ))}
    </ul>
  );
}

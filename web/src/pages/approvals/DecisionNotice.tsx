import { Link } from "react-router";
import type { DecisionAnswer } from "./approval-types";
import { decisionOutcome } from "./decision-text";

/** The result of the decision just made, with a way to the request. */
export function DecisionNotice({
  answer,
  linkToRequest,
}: {
  answer: DecisionAnswer;
  linkToRequest?: boolean;
}) {
  return (
    <p className={`decision-notice decision-notice-${answer.approval.status}`} role="status">
      {decisionOutcome(answer)}{" "}
      {linkToRequest && <Link to={`/approvals/${answer.approval.id}`}>Open the request</Link>}
    </p>
  );
}

/** Why a decision did not count: the request was decided elsewhere or expired meanwhile. */
export function DecisionRefusal({ refusal }: { refusal?: string }) {
  if (refusal === undefined) return null;
  return (
    <p className="decision-error" role="alert">
      {refusal}
    </p>
  );
}

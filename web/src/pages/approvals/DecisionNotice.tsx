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

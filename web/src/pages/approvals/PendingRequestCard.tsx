import { useId } from "react";
import { Link } from "react-router";
import { DateTime } from "../../components/DateTime";
import type { Approval, DecisionAnswer } from "./approval-types";
import { DecisionForm } from "./DecisionForm";
import { RequestFacts } from "./RequestFacts";

/** One request in the inbox: why it is held, what was asked, and the decision. */
export function PendingRequestCard({
  approval,
  agentName,
  onDecided,
  onStale,
}: {
  approval: Approval;
  agentName: string;
  onDecided: (answer: DecisionAnswer) => void;
  onStale: (refusal: string) => void;
}) {
  const headingId = useId();
  return (
    <article className="panel approval-card" aria-labelledby={headingId}>
      <header className="approval-card-head">
        <h3 id={headingId}>
          <Link to={`/approvals/${approval.id}`}>{agentName}</Link>
        </h3>
        <span className="approval-muted">
          Requested <DateTime value={approval.created_at} />
        </span>
      </header>
      <RequestFacts view="card" approval={approval} />
      <DecisionForm approval={approval} onDecided={onDecided} onStale={onStale} />
    </article>
  );
}

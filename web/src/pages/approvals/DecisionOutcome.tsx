import { DateTime } from "../../components/DateTime";
import { StatusBadge } from "../../components/StatusBadge";
import type { ApprovalDetail } from "./approval-types";
import { InvocationResult } from "./InvocationResult";

/** A decided request: the verdict, when and why, and what became of the call. */
export function DecisionOutcome({ approval }: { approval: ApprovalDetail }) {
  return (
    <section className="panel approval-outcome" aria-labelledby="outcome-heading">
      <h2 id="outcome-heading">Outcome</h2>
      <dl className="facts">
        <dt>Request</dt>
        <dd>
          <StatusBadge status={approval.status} />
        </dd>
        {approval.decided_at && (
          <>
            <dt>Decided</dt>
            <dd>
              <DateTime value={approval.decided_at} />
            </dd>
          </>
        )}
        <dt>Reason</dt>
        <dd>{approval.decision_reason ?? "None given"}</dd>
      </dl>
      <InvocationResult invocationId={approval.invocation_id} />
    </section>
  );
}

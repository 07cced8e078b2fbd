import { useCallback, useState } from "react";
import { Link, useParams } from "react-router";
import { useInterval, useResource } from "../../api/hooks";
import { Empty, ResourceView } from "../../components/States";
import { StatusBadge } from "../../components/StatusBadge";
import type { ApprovalDetail, DecisionAnswer } from "./approval-types";
import { DecisionForm } from "./DecisionForm";
import { DecisionNotice, DecisionRefusal } from "./DecisionNotice";
import { DecisionOutcome } from "./DecisionOutcome";
import { DecisionsTable } from "./DecisionsTable";
import { RequestFacts } from "./RequestFacts";
import { SummaryText } from "./RequestParts";
import "./approvals.css";

/** Other approvers may decide while the page is open. */
const REFRESH_MS = 10_000;

/** One approval request (approvers' e-mails link here): the request, the decisions, and the verdict. */
export function ApprovalDetailPage() {
  const { id = "" } = useParams();
  const approval = useResource<ApprovalDetail>(`/approvals/${encodeURIComponent(id)}`);
  const [answer, setAnswer] = useState<DecisionAnswer>();
  const [refusal, setRefusal] = useState<string>();
  const { data, reload } = approval;
  const reloadWhilePending = useCallback(() => {
    if (data?.status === "pending") reload();
  }, [data?.status, reload]);
  useInterval(reloadWhilePending, REFRESH_MS);

  return (
    <section className="approval-page">
      <p className="approval-back">
        <Link to="/approvals">← Approvals</Link>
      </p>
      <h1>Approval request</h1>
      <ResourceView resource={approval}>
        {(request) => (
          <ApprovalView
            approval={request}
            answer={answer}
            refusal={refusal}
            onDecided={(next) => {
              setAnswer(next);
              setRefusal(undefined);
              reload();
            }}
            onStale={(message) => {
              setRefusal(message);
              reload();
            }}
          />
        )}
      </ResourceView>
    </section>
  );
}

function ApprovalView({
  approval,
  answer,
  refusal,
  onDecided,
  onStale,
}: {
  approval: ApprovalDetail;
  answer?: DecisionAnswer;
  refusal?: string;
  onDecided: (answer: DecisionAnswer) => void;
  onStale: (refusal: string) => void;
}) {
  const agentName = useResource<{ name: string }>(`/external-agents/${approval.external_agent_id}`).data
    ?.name;
  return (
    <>
      <p className="approval-id">
        <StatusBadge status={approval.status} /> <code>{approval.id}</code>
      </p>
      {answer?.approval.id === approval.id && <DecisionNotice answer={answer} />}
      <DecisionRefusal refusal={refusal} />
      <div className="grid">
        <section className="panel" aria-labelledby="request-heading">
          <h2 id="request-heading">Request</h2>
          <RequestFacts view="page" approval={approval} agentName={agentName ?? approval.external_agent_id} />
        </section>
        <section className="panel" aria-labelledby="summary-heading">
          <h2 id="summary-heading">Summary</h2>
          <p className="approval-muted">What the caller sent, with secrets and sensitive data masked.</p>
          <SummaryText summary={approval.summary} />
        </section>
      </div>
      {approval.status === "pending" ? (
        <section className="panel" aria-labelledby="decide-heading">
          <h2 id="decide-heading">Your decision</h2>
          <DecisionForm approval={approval} onDecided={onDecided} onStale={onStale} />
        </section>
      ) : (
        <DecisionOutcome approval={approval} />
      )}
      <section aria-labelledby="decisions-heading">
        <h2 id="decisions-heading">Decisions</h2>
        {approval.decisions.length > 0 ? (
          <DecisionsTable decisions={approval.decisions} />
        ) : (
          <Empty>
            {approval.status === "pending"
              ? "No one has decided yet."
              : "No one decided: the request timed out."}
          </Empty>
        )}
      </section>
    </>
  );
}

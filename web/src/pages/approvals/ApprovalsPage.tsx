import { useState } from "react";
import { ApprovalHistory } from "./ApprovalHistory";
import type { DecisionAnswer } from "./approval-types";
import { DecisionNotice } from "./DecisionNotice";
import { PendingRequests } from "./PendingRequests";
import "./approvals.css";

/** The approvals inbox: requests waiting for a decision, and what was decided before. */
export function ApprovalsPage() {
  const [lastDecision, setLastDecision] = useState<DecisionAnswer>();
  // Bumped after each decision so the history shows it.
  const [historyVersion, setHistoryVersion] = useState(0);
  return (
    <section className="approvals-page">
      <h1>Approvals</h1>
      {lastDecision && <DecisionNotice answer={lastDecision} linkToRequest />}
      <PendingRequests
        onDecided={(answer) => {
          setLastDecision(answer);
          setHistoryVersion((version) => version + 1);
        }}
      />
      <ApprovalHistory version={historyVersion} />
    </section>
  );
}

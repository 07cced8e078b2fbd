import { useState } from "react";
import { ApiError } from "../../api/client";
import { useApi } from "../../auth/session";
import { Field } from "../../components/Field";
import type { Approval, DecisionAnswer } from "./approval-types";
import { decisionErrorMessage } from "./decision-text";

type Verdict = "approve" | "reject";

/**
 * Approve or reject one request, with a reason (Steward requires one to reject and
 * says so itself: the form shows the server's answer rather than guessing).
 */
export function DecisionForm({
  approval,
  onDecided,
  onStale,
}: {
  approval: Pick<Approval, "id">;
  onDecided: (answer: DecisionAnswer) => void;
  /**
   * The request changed under us (decided elsewhere, expired). The caller shows why and loads it
   * again; reloading usually removes this form, so the refusal cannot live in it.
   */
  onStale: (refusal: string) => void;
}) {
  const api = useApi();
  const [reason, setReason] = useState("");
  const [sending, setSending] = useState<Verdict | null>(null);
  const [error, setError] = useState<unknown>();

  async function decide(verdict: Verdict) {
    setSending(verdict);
    setError(undefined);
    const text = reason.trim();
    try {
      const answer = await api.post<DecisionAnswer>(
        `/approvals/${approval.id}/${verdict}`,
        text ? { reason: text } : {},
      );
      setReason("");
      onDecided(answer);
    } catch (failure) {
      if (failure instanceof ApiError && (failure.status === 409 || failure.status === 410)) {
        onStale(decisionErrorMessage(failure));
      } else {
        setError(failure);
      }
    } finally {
      setSending(null);
    }
  }

  const reasonError = error instanceof ApiError ? error.fieldErrors.reason : undefined;
  return (
    <fieldset className="decision-form">
      <legend className="visually-hidden">Decision</legend>
      <Field
        label="Reason"
        help="Required to reject; kept with your decision in the history and the audit log."
        error={reasonError && `Reason ${reasonError}.`}
      >
        {(props) => (
          <textarea {...props} rows={2} value={reason} onChange={(event) => setReason(event.target.value)} />
        )}
      </Field>
      {error !== undefined && !reasonError && (
        <p className="decision-error" role="alert">
          {decisionErrorMessage(error)}
        </p>
      )}
      <div className="decision-actions">
        <button type="button" disabled={sending !== null} onClick={() => decide("approve")}>
          {sending === "approve" ? "Approving…" : "Approve"}
        </button>
        <button type="button" className="danger" disabled={sending !== null} onClick={() => decide("reject")}>
          {sending === "reject" ? "Rejecting…" : "Reject"}
        </button>
      </div>
    </fieldset>
  );
}

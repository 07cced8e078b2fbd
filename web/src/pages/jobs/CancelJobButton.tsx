import { useState } from "react";
import { errorMessage } from "../../api/client";
import { useApi } from "../../auth/session";
import type { Job } from "./job-types";

/** Asks Steward to stop a queued or running job; it stops at the next node. */
export function CancelJobButton({ job, reloadJob }: { job: Job; reloadJob: () => void }) {
  const api = useApi();
  const [sending, setSending] = useState(false);
  const [error, setError] = useState<unknown>();

  async function cancel() {
    setSending(true);
    setError(undefined);
    try {
      await api.post<Job>(`/jobs/${encodeURIComponent(job.id)}/cancel`);
    } catch (failure) {
      setError(failure);
    } finally {
      // Either way the job changed: cancel requested, or it had already finished (409).
      reloadJob();
      setSending(false);
    }
  }

  return (
    <div className="job-cancel">
      <button type="button" className="danger" disabled={sending || job.cancel_requested} onClick={cancel}>
        {job.cancel_requested ? "Cancel requested" : sending ? "Cancelling…" : "Cancel job"}
      </button>
      {error !== undefined && (
        <p className="job-error-text" role="alert">
          Could not cancel: {errorMessage(error)}
        </p>
      )}
    </div>
  );
}

import { DateTime } from "../../components/DateTime";
import { StatusBadge } from "../../components/StatusBadge";
import type { Job } from "./job-types";

/** A job's state and its life so far. */
export function JobFacts({ job }: { job: Job }) {
  return (
    <dl className="facts">
      <dt>Status</dt>
      <dd>
        <StatusBadge status={job.status} />
        {job.cancel_requested && job.status !== "cancelled" && " (cancel requested)"}
      </dd>
      <dt>Attempts</dt>
      <dd>{job.attempts}</dd>
      <dt>Checkpoints</dt>
      <dd>{job.checkpoints ?? "—"}</dd>
      <dt>Submitted through</dt>
      <dd>{job.source}</dd>
      <dt>Trace id</dt>
      <dd>
        <code>{job.trace_id}</code>
      </dd>
      <dt>Submitted</dt>
      <dd>
        <DateTime value={job.created_at} />
      </dd>
      <dt>Started</dt>
      <dd>{job.started_at ? <DateTime value={job.started_at} /> : "Not yet"}</dd>
      <dt>Finished</dt>
      <dd>{job.finished_at ? <DateTime value={job.finished_at} /> : "Not yet"}</dd>
    </dl>
  );
}

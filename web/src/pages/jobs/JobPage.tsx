import { useCallback, useEffect } from "react";
import { Link, useParams } from "react-router";
import { useInterval, useResource } from "../../api/hooks";
import { ResourceView } from "../../components/States";
import { CancelJobButton } from "./CancelJobButton";
import { JobFacts } from "./JobFacts";
import { JobOutcome } from "./JobOutcome";
import { JobStreamView } from "./JobStreamView";
import { isActive, type Job } from "./job-types";
import { useJobStream } from "./useJobStream";
import "./jobs.css";

/** A safety net for status changes the stream does not announce (a job still queued). */
const REFRESH_MS = 5_000;

/** One job: its state, its result or error, a cancel button while it runs, and its live events. */
export function JobPage() {
  const { id = "" } = useParams();
  const job = useResource<Job>(`/jobs/${encodeURIComponent(id)}`);
  const { data, reload } = job;
  const stream = useJobStream(data ? id : null, reload);

  const active = data !== undefined && isActive(data.status);
  const reloadWhileActive = useCallback(() => {
    if (active) reload();
  }, [active, reload]);
  useInterval(reloadWhileActive, REFRESH_MS);

  // The first event means the job has started: show it running without waiting for the poll.
  const started = stream.lastSeq > 0;
  useEffect(() => {
    if (started) reload();
  }, [started, reload]);

  return (
    <section className="job-page">
      <p className="job-back">
        <Link to="/jobs">← Jobs</Link>
      </p>
      <h1>{data ? `Job ${data.name}` : "Job"}</h1>
      <ResourceView resource={job}>
        {(current) => (
          <>
            <div className="job-head">
              <code>{current.id}</code>
              {isActive(current.status) && <CancelJobButton job={current} reloadJob={reload} />}
            </div>
            <div className="grid">
              <section className="panel" aria-labelledby="job-state-heading">
                <h2 id="job-state-heading">State</h2>
                <JobFacts job={current} />
              </section>
              <JobOutcome job={current} />
            </div>
            <JobStreamView stream={stream} />
          </>
        )}
      </ResourceView>
    </section>
  );
}

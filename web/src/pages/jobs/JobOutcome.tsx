import type { Job } from "./job-types";

/** What the job produced, or why it failed; nothing while it runs. */
export function JobOutcome({ job }: { job: Job }) {
  if (job.error)
    return (
      <section className="panel job-error" aria-labelledby="job-error-heading">
        <h2 id="job-error-heading">Error</h2>
        <p role="alert">
          {job.error.message} <span className="job-muted">({job.error.type})</span>
        </p>
        {job.error.stack_trace && (
          <details>
            <summary>Stack trace</summary>
            <pre>{job.error.stack_trace}</pre>
          </details>
        )}
      </section>
    );
  if (job.status !== "completed") return null;
  return (
    <section className="panel" aria-labelledby="job-result-heading">
      <h2 id="job-result-heading">Result</h2>
      <pre>{JSON.stringify(job.result, null, 2)}</pre>
    </section>
  );
}

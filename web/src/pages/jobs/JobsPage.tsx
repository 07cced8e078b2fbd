import { useState } from "react";
import { Link } from "react-router";
import type { Page } from "../../api/client";
import { useInterval, useResource } from "../../api/hooks";
import { DateTime } from "../../components/DateTime";
import { Pagination } from "../../components/Pagination";
import { SelectFilter } from "../../components/SelectFilter";
import { ResourceView } from "../../components/States";
import { StatusBadge } from "../../components/StatusBadge";
import { JOB_STATUSES, type Job } from "./job-types";
import "./jobs.css";

const PAGE_SIZE = 20;
/** Jobs move from queued to running to done on their own. */
const REFRESH_MS = 5_000;

/** How long a job ran (or has been running), in words short enough for a table cell. */
function duration(job: Job): string {
  if (!job.started_at) return "—";
  const end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
  const seconds = Math.max(0, (end - Date.parse(job.started_at)) / 1000);
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

/** Background jobs of the organization, newest first, by status. */
export function JobsPage() {
  const [status, setStatus] = useState("");
  const [page, setPage] = useState(1);
  const jobs = useResource<Page<Job>>("/jobs", { status, page, limit: PAGE_SIZE });
  useInterval(jobs.reload, REFRESH_MS);

  return (
    <section className="jobs-page">
      <h1>Jobs</h1>
      <div className="toolbar">
        <SelectFilter
          label="Status"
          anyLabel="Any status"
          options={JOB_STATUSES}
          value={status}
          onChange={(value) => {
            setStatus(value);
            setPage(1);
          }}
        />
      </div>
      <ResourceView
        resource={jobs}
        isEmpty={(data) => data.total === 0}
        empty={
          status
            ? `No ${status} jobs.`
            : "No jobs yet. Jobs are submitted through POST /api/v1/jobs, a CloudEvent or JetStream."
        }
      >
        {(data) => (
          <>
            <div className="table-wrap">
              <table>
                <caption className="visually-hidden">Jobs</caption>
                <thead>
                  <tr>
                    <th scope="col">Job</th>
                    <th scope="col">Status</th>
                    <th scope="col">Attempts</th>
                    <th scope="col">Source</th>
                    <th scope="col">Submitted</th>
                    <th scope="col">Ran for</th>
                  </tr>
                </thead>
                <tbody>
                  {data.items.map((job) => (
                    <tr key={job.id}>
                      <td>
                        <Link to={`/jobs/${encodeURIComponent(job.id)}`}>{job.name}</Link>
                        <br />
                        <code className="job-muted">{job.id}</code>
                      </td>
                      <td>
                        <StatusBadge status={job.status} />
                        {job.error && (
                          <span className="job-error-text job-list-error">{job.error.message}</span>
                        )}
                      </td>
                      <td>{job.attempts}</td>
                      <td>{job.source}</td>
                      <td>
                        <DateTime value={job.created_at} />
                      </td>
                      <td>{duration(job)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pagination page={data} onPage={setPage} label="Jobs" />
          </>
        )}
      </ResourceView>
    </section>
  );
}

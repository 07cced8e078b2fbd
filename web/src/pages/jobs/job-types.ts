/** Jobs as /api/v1/jobs answers them (src/executor/job.routes.ts). */

export const JOB_STATUSES = ["queued", "running", "completed", "failed", "cancelled"] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export interface Job {
  id: string;
  organization_id: string;
  name: string;
  trace_id: string;
  status: JobStatus;
  result: unknown;
  error: { message: string; type: string; stack_trace?: string } | null;
  attempts: number;
  source: string;
  cancel_requested: boolean;
  /** Only on GET /jobs/{id}. */
  checkpoints?: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

/** One message of the job's stream (`{event_type, data, seq}`), numbered from 1. */
export interface JobStreamEvent {
  event_type: string;
  data: Record<string, unknown>;
  seq: number;
}

export function isActive(status: JobStatus): boolean {
  return status === "queued" || status === "running";
}

import type { JobRow } from "../db/schema.js";
import type { JobExecutionEvent, JobOutcome } from "./job-event.js";
import type { JobError } from "./job-record.js";
import { type JobStore, outcomeOf } from "./job-store.js";
import type { JobStreams } from "./job-stream.js";

/** Sends a job's result event (JetStream when configured; nowhere in the embedded default). */
export type PublishResult = (
  job: Pick<JobExecutionEvent, "job_id" | "trace_id">,
  outcome: JobOutcome,
) => Promise<void>;

type StoredOutcome = Parameters<JobStore["finish"]>[1];

/**
 * A job's outcome, stored once and then announced. The announcement is recorded, so one
 * whose publish failed is made by whoever sees the final job next (with the same
 * Nats-Msg-Id, so subscribers still get it once).
 */
export class JobResults {
  constructor(
    private readonly store: JobStore,
    private readonly streams: JobStreams,
    private readonly publish: PublishResult,
    private readonly onFinished: (status: StoredOutcome["status"]) => void,
  ) {}

  /** Stores the outcome and announces it; false when the job already had one (it keeps its first). */
  async conclude(
    job: Pick<JobExecutionEvent, "job_id" | "trace_id">,
    stored: StoredOutcome,
  ): Promise<boolean> {
    const row = await this.store.finish(job.job_id, stored);
    if (!row) return false;
    this.onFinished(stored.status);
    await this.announceIfUnpublished(row, job);
    return true;
  }

  /**
   * Fails a job no run is ending (its worker was lost, its message given up). Its watchers
   * get the `error` and `end` events a run would have sent, so no stream waits for ever.
   */
  async failOutsideRun(
    job: Pick<JobExecutionEvent, "job_id" | "trace_id">,
    error: JobError,
  ): Promise<boolean> {
    const concluded = await this.conclude(job, { status: "failed", error });
    if (concluded) {
      const emitter = await this.streams.emitter(job.job_id);
      emitter.emit("error", { ...error });
      emitter.emit("end", {});
      await emitter.flush();
    }
    return concluded;
  }

  async announceIfUnpublished(
    row: JobRow,
    job: Pick<JobExecutionEvent, "job_id" | "trace_id">,
  ): Promise<void> {
    if (row.resultPublishedAt) return;
    await this.publish(job, outcomeOf(row));
    await this.store.markPublished(row.id);
  }

  /** A failure of a job that has no row of its own (invalid, unknown organization) is announced all the same. */
  async announceRowless(job: JobExecutionEvent, error: { message: string; type: string }): Promise<void> {
    this.onFinished("failed");
    await this.publish(job, { kind: "failed", error });
  }
}

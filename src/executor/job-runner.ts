import type { Logger } from "pino";
import type { JobRow } from "../db/schema.js";
import { failsAgain } from "./final-failure.js";
import type { CompiledJobGraph } from "./graph-compiler.js";
import type { GraphDefinition } from "./graph-definition.js";
import type { JobGraphs } from "./job-graphs.js";
import type { JobError } from "./job-record.js";
import type { JobStreams } from "./job-stream.js";

/** How a run ended. A failure is `retryable` when running the job again may succeed. */
export type RunOutcome =
  | { kind: "completed"; result: unknown }
  | { kind: "failed"; error: JobError; retryable: boolean }
  | { kind: "cancelled" };

export interface JobRunnerOptions {
  graphs: JobGraphs;
  streams: JobStreams;
  logger: Logger;
  /** Asked between nodes: a cancelled job stops at the next node boundary. */
  cancelRequested(jobId: string): Promise<boolean>;
}

/** A node failure as the job's error: the message always, the stack for Steward's own bugs only. */
export function jobErrorOf(error: unknown): JobError {
  if (error instanceof Error) return { message: error.message, type: error.name || "Error" };
  return { message: String(error), type: "Error" };
}

/**
 * What becomes of a run's outcome, decided (and stored) by whoever runs the job before
 * its stream is closed: `final` ends the stream with `end`, `retry` with `retrying`, as
 * another attempt will go on with the same stream.
 */
export type SettleOutcome = (outcome: RunOutcome) => Promise<"final" | "retry">;

/**
 * Runs a stored job's graph, or resumes it from its last checkpoint (thread = job id),
 * streaming its events. Failures of the job itself come back as outcomes and go through
 * `settle` before the stream's last event, so a reader told `end` finds the job final;
 * anything thrown is Steward's own trouble (its database, say).
 */
export class JobRunner {
  constructor(private readonly options: JobRunnerOptions) {}

  async run(job: JobRow, settle: SettleOutcome, signal?: AbortSignal): Promise<RunOutcome> {
    const { streams, logger } = this.options;
    // Its first attempt (claiming counts one): no earlier run left events or checkpoints to look up.
    const firstAttempt = job.attempts === 1;
    const emitter = await streams.emitter(job.id, firstAttempt);
    const abort = new AbortController();
    signal?.addEventListener("abort", () => abort.abort(signal.reason), { once: true });
    const watchCancel = setInterval(() => {
      this.options
        .cancelRequested(job.id)
        .then((cancelled) => cancelled && abort.abort(new JobCancelledError()))
        .catch((error: unknown) => logger.warn({ err: error, job_id: job.id }, "cancel check failed"));
    }, 1000);
    let outcome: RunOutcome;
    try {
      // Cancelled before it started: nothing runs.
      if (job.cancelRequested) throw new JobCancelledError();
      const graph = await this.compile(job);
      const run = await graph.run({
        jobId: job.id,
        organizationId: job.organizationId,
        traceId: job.traceId,
        input: job.input,
        firstAttempt,
        emit: emitter.emit,
        signal: abort.signal,
      });
      outcome = { kind: "completed", result: run.result };
    } catch (error) {
      outcome =
        error instanceof JobCancelledError || abort.signal.reason instanceof JobCancelledError
          ? { kind: "cancelled" }
          : { kind: "failed", error: jobErrorOf(error), retryable: !failsAgain(error) };
      if (outcome.kind === "failed") emitter.emit("error", { ...outcome.error });
    } finally {
      clearInterval(watchCancel);
    }
    const settled = await settle(outcome);
    emitter.emit(settled === "retry" ? "retrying" : "end", {});
    await emitter.flush();
    return outcome;
  }

  /** The job's latest checkpointed state. */
  async state(job: JobRow) {
    return (await this.compile(job)).state(job.id);
  }

  private compile(job: JobRow): Promise<CompiledJobGraph> {
    return this.options.graphs.compile(job.definition as GraphDefinition);
  }
}

export class JobCancelledError extends Error {
  override name = "JobCancelledError";
  constructor() {
    super("the job was cancelled");
  }
}

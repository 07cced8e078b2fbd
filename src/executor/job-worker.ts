import type { Logger } from "pino";
import { isForeignKeyViolation } from "../db/errors.js";
import type { JobRow } from "../db/schema.js";
import { DEFAULT_ORGANIZATION_ID } from "../orgs/organization.service.js";
import { graphDefinitionErrors } from "./graph-definition.js";
import {
  type IncomingJob,
  InvalidJobEventError,
  type JobExecutionEvent,
  type JobOutcome,
  jobFromNats,
} from "./job-event.js";
import type { JobDelivery } from "./job-queue.js";
import { redeliveryDelayMs } from "./job-queue.js";
import type { JobRunner, RunOutcome } from "./job-runner.js";
import { FINAL_STATUSES, type JobStatus, type JobStore } from "./job-store.js";

/** Sends a job's result event (JetStream when configured; nowhere in the embedded default). */
export type PublishResult = (
  job: Pick<JobExecutionEvent, "job_id" | "trace_id">,
  outcome: JobOutcome,
) => Promise<void>;

export interface JobWorkerCounters {
  received(): void;
  finished(outcome: "completed" | "failed" | "cancelled"): void;
  redelivered(): void;
  deadLettered(): void;
}

export interface JobWorkerOptions {
  store: JobStore;
  runner: JobRunner;
  publishResult: PublishResult;
  counters: JobWorkerCounters;
  /** How often a long job tells the broker it is still working (a fraction of ack_wait). */
  workingEveryMs: number;
  logger: Logger;
}

/**
 * What happens to one delivered job message, whatever carried it: parse, validate,
 * record (a job id seen before never runs twice), run or resume, store the outcome,
 * publish the result — and only then ack. Transient failures are nak'd with a growing
 * delay; the last delivery turns them into a failed result and a dead letter.
 */
export class JobWorker {
  constructor(private readonly options: JobWorkerOptions) {}

  async handle(delivery: JobDelivery): Promise<void> {
    const { store, counters, logger } = this.options;
    counters.received();
    if (delivery.deliveryCount > 1) counters.redelivered();
    let incoming: IncomingJob;
    try {
      incoming = jobFromNats(delivery.data, delivery.headers);
    } catch (error) {
      if (!(error instanceof InvalidJobEventError)) throw error;
      await this.deadLetter(delivery, error.message);
      delivery.term(error.message);
      return;
    }
    const { job } = incoming;
    const definitionErrors = graphDefinitionErrors(job.agent_definition);
    if (definitionErrors.length > 0) {
      const reason = `invalid agent_definition: ${definitionErrors.map((e) => `${e.field} ${e.message}`).join("; ")}`;
      await this.giveUp(delivery, job, { message: reason, type: "InvalidAgentDefinition" });
      delivery.term(reason);
      return;
    }
    let row: JobRow;
    try {
      row = (
        await store.create({
          id: job.job_id,
          organizationId: job.organization_id ?? DEFAULT_ORGANIZATION_ID,
          traceId: job.trace_id,
          name: String((job.agent_definition as { name?: unknown }).name ?? job.job_id),
          definition: job.agent_definition as Record<string, unknown>,
          input: job.input_payload,
          source: "jetstream",
          createdBy: null,
        })
      ).row;
    } catch (error) {
      if (!isForeignKeyViolation(error)) throw error;
      const reason = `organization ${job.organization_id} does not exist`;
      await this.giveUp(delivery, job, { message: reason, type: "UnknownOrganization" });
      delivery.term(reason);
      return;
    }
    // Seen before and finished: its result was published then; never a second one.
    if (FINAL_STATUSES.includes(row.status as JobStatus)) {
      await delivery.ack();
      return;
    }
    const leaseMs = this.options.workingEveryMs * 2;
    const working = setInterval(() => {
      delivery.working();
      store
        .renew(row.id, leaseMs)
        .catch((error: unknown) => logger.warn({ err: error, job_id: row.id }, "lease not renewed"));
    }, this.options.workingEveryMs);
    try {
      const started = await store.start(row.id, leaseMs);
      if (!started) {
        // Finished meanwhile, or running under another delivery of the same job, whose
        // own message comes back if its worker dies: this copy has nothing left to do.
        delivery.term("the job is finished or running under another delivery");
        return;
      }
      const outcome = await this.options.runner.run(started);
      await this.conclude(delivery, job, outcome);
    } catch (error) {
      logger.warn({ err: error, job_id: job.job_id, delivery: delivery.deliveryCount }, "job run failed");
      if (delivery.deliveryCount < delivery.maxDeliver) {
        // Were the database away, this fails too; the lease then runs out by itself.
        await store
          .release(row.id)
          .catch((failure: unknown) => logger.warn({ err: failure, job_id: row.id }, "lease not released"));
        delivery.nak(redeliveryDelayMs(delivery.deliveryCount));
      } else {
        await this.giveUp(delivery, job, { message: (error as Error).message, type: "StewardError" });
        await delivery.ack();
      }
    } finally {
      clearInterval(working);
    }
  }

  private async conclude(delivery: JobDelivery, job: JobExecutionEvent, outcome: RunOutcome): Promise<void> {
    if (outcome.kind === "failed" && outcome.retryable && delivery.deliveryCount < delivery.maxDeliver) {
      // The next delivery resumes from the last checkpoint: completed nodes stay done.
      await this.options.store.release(job.job_id);
      delivery.nak(redeliveryDelayMs(delivery.deliveryCount));
      return;
    }
    if (outcome.kind === "completed") {
      await this.record(
        job,
        { status: "completed", result: outcome.result },
        { kind: "completed", result: outcome.result },
      );
    } else if (outcome.kind === "cancelled") {
      const error = { message: "the job was cancelled", type: "JobCancelled" };
      await this.record(job, { status: "cancelled", error }, { kind: "failed", error });
    } else {
      await this.record(
        job,
        { status: "failed", error: outcome.error },
        { kind: "failed", error: outcome.error },
      );
      if (outcome.retryable)
        await this.deadLetter(
          delivery,
          `failed after ${delivery.deliveryCount} deliveries: ${outcome.error.message}`,
          job.job_id,
        );
    }
    await delivery.ack();
  }

  /** Stores the outcome and announces it — only the first one: a job never has two results. */
  private async record(
    job: JobExecutionEvent,
    stored: Parameters<JobStore["finish"]>[1],
    announced: JobOutcome,
  ): Promise<void> {
    if (await this.options.store.finish(job.job_id, stored)) await this.options.publishResult(job, announced);
    this.options.counters.finished(stored.status);
  }

  /** A job that will never succeed: recorded failed when it has a row, announced, dead-lettered. */
  private async giveUp(
    delivery: JobDelivery,
    job: JobExecutionEvent,
    error: { message: string; type: string },
  ) {
    const row = await this.options.store.find(job.job_id);
    // A job without a row (invalid, unknown organization) is announced all the same.
    if (!row || (await this.options.store.finish(job.job_id, { status: "failed", error })))
      await this.options.publishResult(job, { kind: "failed", error });
    this.options.counters.finished("failed");
    await this.deadLetter(delivery, error.message, job.job_id);
  }

  private async deadLetter(delivery: JobDelivery, reason: string, jobId?: string): Promise<void> {
    await this.options.store.deadLetter({
      subject: delivery.subject,
      raw: delivery.data,
      headers: delivery.headers,
      reason,
      jobId,
      deliveries: delivery.deliveryCount,
    });
    this.options.counters.deadLettered();
  }
}

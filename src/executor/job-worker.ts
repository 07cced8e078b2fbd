import type { Logger } from "pino";
import { isForeignKeyViolation } from "../db/errors.js";
import { DEFAULT_ORGANIZATION_ID } from "../orgs/organization.service.js";
import { graphDefinitionErrors } from "./graph-definition.js";
import { type IncomingJob, InvalidJobEventError, type JobExecutionEvent, jobFromNats } from "./job-event.js";
import type { JobDelivery } from "./job-queue.js";
import { redeliveryDelayMs } from "./job-queue.js";
import type { JobResults } from "./job-results.js";
import type { JobRunner, RunOutcome } from "./job-runner.js";
import type { JobStore } from "./job-store.js";

/** Past a lease's end, before a held job's message comes back: the holder's last renewal may be in flight. */
const LEASE_GRACE_MS = 1_000;

export interface JobWorkerCounters {
  received(): void;
  redelivered(): void;
  deadLettered(): void;
}

export interface JobWorkerOptions {
  store: JobStore;
  runner: JobRunner;
  results: JobResults;
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
    try {
      await this.process(delivery, job);
    } catch (error) {
      logger.warn({ err: error, job_id: job.job_id, delivery: delivery.deliveryCount }, "job run failed");
      if (delivery.deliveryCount < delivery.maxDeliver) {
        // Were the database away, this fails too; the lease then runs out by itself.
        await store
          .release(job.job_id)
          .catch((failure: unknown) =>
            logger.warn({ err: failure, job_id: job.job_id }, "lease not released"),
          );
        delivery.nak(redeliveryDelayMs(delivery.deliveryCount));
      } else {
        await this.giveUp(delivery, job, { message: (error as Error).message, type: "StewardError" });
        delivery.ack();
      }
    }
  }

  private async process(delivery: JobDelivery, job: JobExecutionEvent): Promise<void> {
    const { store, logger } = this.options;
    const definitionErrors = graphDefinitionErrors(job.agent_definition);
    if (definitionErrors.length > 0) {
      const reason = `invalid agent_definition: ${definitionErrors.map((e) => `${e.field} ${e.message}`).join("; ")}`;
      await this.giveUp(delivery, job, { message: reason, type: "InvalidAgentDefinition" });
      delivery.term(reason);
      return;
    }
    const leaseMs = this.options.workingEveryMs * 2;
    const claim = await this.claim(delivery, job, leaseMs);
    if (!claim) return;
    if (claim.kind === "final") {
      // Seen before and finished: never run twice, but announce a result whose publication failed.
      await this.options.results.announceIfUnpublished(claim.row, job);
      delivery.ack();
      return;
    }
    if (claim.kind === "leased") {
      // Its holder is alive and renewing, or crashed: come back once the lease has run out.
      delivery.nak(claim.retryInMs + LEASE_GRACE_MS);
      return;
    }
    const { row } = claim;
    const stopLease = store.holdLease(
      row.id,
      leaseMs,
      this.options.workingEveryMs,
      (error) => logger.warn({ err: error, job_id: row.id }, "lease not renewed"),
      () => delivery.working(),
    );
    try {
      const finalAttempt = delivery.deliveryCount >= delivery.maxDeliver;
      let settled = "final" as "final" | "retry";
      await this.options.runner.run(row, async (outcome) => {
        settled = await this.settle(delivery, job, outcome, finalAttempt);
        return settled;
      });
      // The next delivery resumes from the last checkpoint: completed nodes stay done.
      if (settled === "retry") delivery.nak(redeliveryDelayMs(delivery.deliveryCount));
      else delivery.ack();
    } finally {
      stopLease();
    }
  }

  /**
   * Records the job (a job id seen before keeps its row) and claims it for this run;
   * undefined (and the message given up) for an unknown organization.
   */
  private async claim(delivery: JobDelivery, job: JobExecutionEvent, leaseMs: number) {
    try {
      return await this.options.store.createAndStart(
        {
          id: job.job_id,
          organizationId: job.organization_id ?? DEFAULT_ORGANIZATION_ID,
          traceId: job.trace_id,
          name: String((job.agent_definition as { name?: unknown }).name ?? job.job_id),
          definition: job.agent_definition as Record<string, unknown>,
          input: job.input_payload,
          source: "jetstream",
          createdBy: null,
        },
        leaseMs,
        delivery.deliveryCount >= delivery.maxDeliver,
      );
    } catch (error) {
      if (!isForeignKeyViolation(error)) throw error;
      const reason = `organization ${job.organization_id} does not exist`;
      await this.giveUp(delivery, job, { message: reason, type: "UnknownOrganization" });
      delivery.term(reason);
      return undefined;
    }
  }

  /** Stores a run's outcome and announces it, or gives the job back for another attempt. */
  private async settle(
    delivery: JobDelivery,
    job: JobExecutionEvent,
    outcome: RunOutcome,
    finalAttempt: boolean,
  ): Promise<"final" | "retry"> {
    const { store } = this.options;
    if (outcome.kind === "failed" && outcome.retryable && !finalAttempt) {
      await store.release(job.job_id);
      return "retry";
    }
    if (outcome.kind === "completed") {
      await this.options.results.conclude(job, { status: "completed", result: outcome.result });
    } else if (outcome.kind === "cancelled") {
      await this.options.results.conclude(job, {
        status: "cancelled",
        error: { message: "the job was cancelled", type: "JobCancelled" },
      });
    } else {
      // The dead letter is written before the result goes out: whoever sees the failed
      // event finds its dead letter already there.
      if (outcome.retryable)
        await this.deadLetter(
          delivery,
          `failed after ${delivery.deliveryCount} deliveries: ${outcome.error.message}`,
          job.job_id,
        );
      await this.options.results.conclude(job, { status: "failed", error: outcome.error });
    }
    return "final";
  }

  /** A job that will never succeed: dead-lettered, then recorded failed when it has a row of that organization, and announced. */
  private async giveUp(
    delivery: JobDelivery,
    job: JobExecutionEvent,
    error: { message: string; type: string },
  ) {
    const { store, results } = this.options;
    await this.deadLetter(delivery, error.message, job.job_id);
    const row = await store.find(job.job_id);
    if (!row) await results.announceRowless(job, error);
    // Only a row of the message's own organization: a message cannot fail another tenant's job.
    else if (row.organizationId === (job.organization_id ?? DEFAULT_ORGANIZATION_ID))
      await results.failOutsideRun(job, error);
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

import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import type { Database } from "../db/database.js";
import type { DutyLeases } from "../db/duty-leases.js";
import { isForeignKeyViolation } from "../db/errors.js";
import type { JobRow } from "../db/schema.js";
import { AppError, ValidationError } from "../errors.js";
import { newId } from "../ids.js";
import { type AddressGuard, createGuardedAgent } from "../invocation/address-guard.js";
import type { InvocationService } from "../invocation/invocation.service.js";
import type { Metrics } from "../observability/metrics.js";
import { DEFAULT_ORGANIZATION_ID } from "../orgs/organization.service.js";
import { closeBefore } from "../shutdown.js";
import { registerExecutorGauges } from "./executor-metrics.js";
import { graphDefinitionErrors } from "./graph-definition.js";
import {
  type IncomingJob,
  type JobExecutionEvent,
  type JobOutcome,
  jobSubmission,
  resultEvent,
  structuredBytes,
} from "./job-event.js";
import { JobGraphs } from "./job-graphs.js";
import { type JobConsumer, JobQueue, publishRefused, redeliveryDelayMs } from "./job-queue.js";
import type { NewJob } from "./job-record.js";
import { JobResults } from "./job-results.js";
import { JobRunner } from "./job-runner.js";
import { FINAL_STATUSES, type JobStatus, JobStore, outcomeOf, toJobView } from "./job-store.js";
import { JobStreams } from "./job-stream.js";
import { JobWorker } from "./job-worker.js";
import { LostJobSweeper } from "./lost-jobs.js";
import { MemoryJobQueue } from "./memory-job-queue.js";
import { createNodeRunners } from "./node-runners.js";
import { MemoryStreamBus, RedisStreamBus, type StreamBus } from "./stream-bus.js";

export interface ExecutorDependencies {
  config: Config;
  database: Database;
  invocations: InvocationService;
  guard: AddressGuard;
  metrics: Metrics;
  logger: Logger;
  leases: DutyLeases;
}

/** Room past the last delivery JetStream could still make before a job counts as lost. */
const LOST_JOB_MARGIN_MS = 5_000;

export interface SubmitJob {
  organizationId: string;
  createdBy: string;
  job_id?: string;
  trace_id?: string;
  agent_definition: Record<string, unknown>;
  input_payload: unknown;
}

/**
 * The asynchronous executor: jobs from JetStream (when NATS_URL is set) or from an
 * in-process queue (the embedded default), run by one worker code path with LangGraph
 * checkpoints in Steward's own database, their events streamed over Redis (or memory).
 */
export class Executor {
  readonly store: JobStore;
  readonly streams: JobStreams;
  readonly runner: JobRunner;
  private readonly graphs: JobGraphs;
  private readonly worker: JobWorker;
  private readonly results: JobResults;
  private readonly dispatcher;
  private consumer?: JobConsumer;
  private lostJobs?: LostJobSweeper;

  private constructor(
    private readonly deps: ExecutorDependencies,
    private readonly bus: StreamBus,
    private readonly queue: JobQueue | MemoryJobQueue,
  ) {
    const { config, database, logger, metrics } = deps;
    this.store = new JobStore(database.db);
    this.streams = new JobStreams(database.db, bus, config.executor.maxStoredEvents, logger);
    const dispatcher = createGuardedAgent(deps.guard);
    this.dispatcher = dispatcher;
    this.graphs = new JobGraphs(
      database.pool,
      database.schema,
      createNodeRunners({
        invocations: deps.invocations,
        dispatcher,
        llm: { ...config.executor.llm, defaultKeyName: "OPENAI_API_KEY" },
        httpTimeoutMs: config.invokeTimeoutMs,
        maxResponseBytes: config.maxResponseBytes,
      }),
    );
    this.runner = new JobRunner({
      graphs: this.graphs,
      streams: this.streams,
      logger,
      cancelRequested: (jobId) => this.store.cancelRequested(jobId),
    });
    this.results = new JobResults(
      this.store,
      this.streams,
      (job, outcome) => this.publishResult(job, outcome),
      (status) => metrics.jobs.inc({ event: status }),
    );
    this.worker = new JobWorker({
      store: this.store,
      runner: this.runner,
      results: this.results,
      counters: {
        received: () => metrics.jobs.inc({ event: "received" }),
        redelivered: () => metrics.jobs.inc({ event: "redelivered" }),
        deadLettered: () => metrics.jobs.inc({ event: "dead_lettered" }),
      },
      workingEveryMs: this.workingEveryMs,
      logger,
    });
    registerExecutorGauges(
      metrics.registry,
      {
        queue: queue instanceof JobQueue ? "jetstream" : "in_process",
        consumerLag: () => queue.pending(),
        streamSubscribers: () => bus.subscriberCount(),
      },
      logger,
    );
  }

  /** How often a running job renews its lease (and tells JetStream it is working): a third of ack_wait. */
  private get workingEveryMs(): number {
    return Math.max(1000, Math.floor(this.deps.config.executor.ackWaitMs / 3));
  }

  /** One replica fails the jobs JetStream gave up on while their worker was dead. */
  private sweepLostJobs(): void {
    const { ackWaitMs, maxDeliver } = this.deps.config.executor;
    const lostAfterMs = ackWaitMs + redeliveryDelayMs(maxDeliver - 1) + LOST_JOB_MARGIN_MS;
    this.lostJobs = new LostJobSweeper({
      store: this.store,
      results: this.results,
      leases: this.deps.leases,
      logger: this.deps.logger,
      lostAfterMs,
      intervalMs: Math.min(Math.max(1000, Math.floor(lostAfterMs / 2)), 30_000),
    });
    this.lostJobs.start();
  }

  /** Builds the executor: the stream bus, and JetStream when configured. */
  static async create(deps: ExecutorDependencies): Promise<Executor> {
    const { config, logger } = deps;
    const bus: StreamBus = config.redis
      ? new RedisStreamBus(config.redis.url, (error) => logger.warn({ err: error }, "job stream redis error"))
      : new MemoryStreamBus();
    const queue = config.nats
      ? await JobQueue.connect({ url: config.nats.url, ...config.executor }, logger)
      : new MemoryJobQueue(config.executor.maxDeliver, config.executor.concurrency, (error) =>
          logger.error({ err: error }, "job handler failed"),
        );
    if (queue instanceof JobQueue) await queue.ensure();
    return new Executor(deps, bus, queue);
  }

  /** Starts consuming (the API process with NATS, `steward worker`, or in process). */
  async start(): Promise<void> {
    if (this.queue instanceof JobQueue) this.sweepLostJobs();
    if (this.queue instanceof JobQueue && !this.deps.config.executor.consume) {
      this.deps.logger.info("not consuming jobs (STEWARD_JOBS_CONSUME=off): workers run them");
      return;
    }
    // A process taking jobs from JetStream is there to run them: a job runtime that cannot
    // load, or tables that cannot be made, stop it at start rather than fail its jobs.
    if (this.queue instanceof JobQueue) await this.graphs.prepare();
    this.consumer = this.queue.consume((delivery) => this.worker.handle(delivery));
    if (this.queue instanceof MemoryJobQueue) {
      // Nothing durable held these: pick up what a previous run left unfinished — submitted
      // jobs, and CloudEvents whose caller lost its answer with the process (asking again, it
      // finds the job running or its result). On the embedded database this is the only
      // process, so the leases it held before are void.
      const inProcess: NewJob["source"][] = ["http", "cloudevent"];
      if (this.deps.database.kind === "embedded") await this.store.releaseUnfinished(inProcess);
      for (const row of await this.store.unfinished(inProcess)) this.requeue(this.queue, row);
    }
  }

  /**
   * Takes no more jobs and waits for those running, until `deadline`; a job unfinished
   * then is left unacknowledged, and JetStream hands it to another worker.
   */
  async stopConsuming(deadline?: AbortSignal): Promise<void> {
    await this.lostJobs?.stop(deadline);
    const finished = (await this.consumer?.stop(deadline)) ?? true;
    if (!finished)
      this.deps.logger.warn("shutdown deadline passed with jobs still running; they will be redelivered");
  }

  /** Closes the connections (after stopConsuming; job submissions over HTTP publish until then). */
  async close(deadline?: AbortSignal): Promise<void> {
    if (this.queue instanceof JobQueue) await this.queue.close();
    await this.bus.close();
    await closeBefore(this.dispatcher, deadline);
  }

  /** Records a job submitted over HTTP and queues it; the same id again returns the job it names. */
  async submit(request: SubmitJob) {
    const errors = graphDefinitionErrors(request.agent_definition);
    if (errors.length > 0) throw new ValidationError(errors, "The agent_definition is not a valid graph");
    // Checked here, not by a lookahead in the schema's pattern, which not every JSON Schema tool reads.
    if (request.trace_id !== undefined && /^0+$/.test(request.trace_id))
      throw new ValidationError([
        { field: "trace_id", message: "must not be all zeros (an invalid W3C trace id)" },
      ]);
    const job = {
      id: request.job_id ?? newId("job"),
      organizationId: request.organizationId,
      traceId: request.trace_id ?? randomBytes(16).toString("hex"),
      definition: request.agent_definition,
      input: request.input_payload,
    };
    // Built before anything is stored: a job its CloudEvent cannot carry is refused whole.
    const bytes = this.submissionBytes(job);
    const { row, created } = await this.store.create({
      ...job,
      name: String(request.agent_definition.name),
      source: "http",
      createdBy: request.createdBy,
    });
    if (row.organizationId !== request.organizationId)
      throw new AppError("CONFLICT", `job id ${job.id} is taken`, { field: "job_id" });
    // Published again while it waits, in case the first publish failed (JetStream drops the duplicate).
    if (created || row.status === "queued") {
      await this.publishSubmission(row, created ? bytes : this.submissionBytes(row), created);
    }
    return { job: toJobView(row), created };
  }

  /**
   * Queues a recorded job. When JetStream refuses it, a job recorded by this very request
   * is removed again, so no job waits queued that nothing will run, and the caller is told
   * to submit again. When JetStream does not answer in time it may have kept the message:
   * the job stays, and the caller gets its id to submit again with (a queued job is
   * published again, and JetStream drops the duplicate).
   */
  private async publishSubmission(row: JobRow, bytes: Uint8Array, created: boolean): Promise<void> {
    const subject = this.subjectFor(row.name);
    if (!(this.queue instanceof JobQueue)) {
      this.queue.publishJob(subject, bytes);
      return;
    }
    try {
      await this.queue.publishJob(subject, bytes, row.id);
    } catch (error) {
      this.deps.logger.error({ err: error, job_id: row.id }, "job not published to JetStream");
      if (!publishRefused(error)) {
        throw new AppError(
          "SERVICE_UNAVAILABLE",
          `The job queue did not confirm job ${row.id} in time; submit it again with this job_id`,
          { retry_after_ms: 5_000, job_id: row.id },
        );
      }
      if (created) await this.store.forgetQueued(row.id);
      throw new AppError(
        "SERVICE_UNAVAILABLE",
        "The job queue refused the job (no stream takes it); submit it again, with a job_id so that a retry cannot run it twice",
        { retry_after_ms: 5_000 },
      );
    }
  }

  /**
   * Runs a job arriving as a CloudEvent on `POST /` to its end, synchronously. A job id
   * seen before answers its stored result instead of running again.
   */
  async runNow(incoming: IncomingJob): Promise<{ ok: boolean; event: Uint8Array }> {
    const { job } = incoming;
    const errors = graphDefinitionErrors(job.agent_definition);
    if (errors.length > 0) throw new ValidationError(errors, "The agent_definition is not a valid graph");
    const organizationId = job.organization_id ?? DEFAULT_ORGANIZATION_ID;
    const row = await this.recordCloudEvent(job, organizationId);
    // The same id in another organization is another tenant's job: neither run nor shown.
    if (row.organizationId !== organizationId)
      throw new AppError("CONFLICT", `job id ${job.job_id} is taken`, { field: "data.job_id" });
    const leaseMs = this.workingEveryMs * 2;
    const claim = FINAL_STATUSES.includes(row.status as JobStatus)
      ? ({ kind: "final", row } as const)
      : // Run here and now: no broker delivers it again if this process dies.
        await this.store.start(row.id, leaseMs, true);
    if (claim.kind === "leased")
      throw new AppError("CONFLICT", `job ${row.id} is running elsewhere; ask again later`, {
        retry_after_ms: claim.retryInMs,
      });
    if (claim.kind === "started") await this.runHere(claim.row, job, leaseMs);
    const final = await this.store.find(row.id);
    if (!final || !FINAL_STATUSES.includes(final.status as JobStatus))
      throw new AppError("SERVICE_UNAVAILABLE", `job ${row.id} did not finish`);
    await this.results.announceIfUnpublished(final, job);
    const outcome = outcomeOf(final);
    return { ok: outcome.kind === "completed", event: structuredBytes(resultEvent(job, outcome)) };
  }

  private async recordCloudEvent(job: JobExecutionEvent, organizationId: string) {
    try {
      const { row } = await this.store.create({
        id: job.job_id,
        organizationId,
        traceId: job.trace_id,
        name: String((job.agent_definition as { name?: unknown }).name),
        definition: job.agent_definition as Record<string, unknown>,
        input: job.input_payload,
        source: "cloudevent",
        createdBy: null,
      });
      return row;
    } catch (error) {
      if (!isForeignKeyViolation(error)) throw error;
      throw new ValidationError([
        { field: "data.organization_id", message: `organization ${organizationId} does not exist` },
      ]);
    }
  }

  /** One attempt, in this request, holding the job's lease; Steward's own failures answer 503. */
  private async runHere(row: JobRow, job: JobExecutionEvent, leaseMs: number): Promise<void> {
    const stopLease = this.store.holdLease(row.id, leaseMs, this.workingEveryMs, (error) =>
      this.deps.logger.warn({ err: error, job_id: row.id }, "lease not renewed"),
    );
    try {
      await this.runner.run(row, async (outcome) => {
        await this.results.conclude(
          job,
          outcome.kind === "completed"
            ? { status: "completed", result: outcome.result }
            : outcome.kind === "cancelled"
              ? { status: "cancelled", error: { message: "the job was cancelled", type: "JobCancelled" } }
              : { status: "failed", error: outcome.error },
        );
        return "final";
      });
    } catch (error) {
      this.deps.logger.error({ err: error, job_id: row.id }, "job could not run");
      await this.store.release(row.id).catch(() => {});
      throw new AppError("SERVICE_UNAVAILABLE", "the job could not run now; send it again");
    } finally {
      stopLease();
    }
  }

  /** Resolves when the broker answers (at once in process). */
  async ping(): Promise<void> {
    if (this.queue instanceof JobQueue) await this.queue.ping();
  }

  private async publishResult(job: Pick<JobExecutionEvent, "job_id" | "trace_id">, outcome: JobOutcome) {
    if (!(this.queue instanceof JobQueue)) return;
    const event = resultEvent(job, outcome);
    await this.queue.publishResult(outcome.kind, structuredBytes(event), `${job.job_id}:${outcome.kind}`);
  }

  /**
   * Queues an unfinished job in process again. One whose event cannot be built (stored
   * by an older release that checked less) stays queued, named in the log, rather than
   * keeping the server from starting.
   */
  private requeue(queue: MemoryJobQueue, row: JobRow): void {
    let bytes: Uint8Array;
    try {
      bytes = this.submissionBytes(row);
    } catch (error) {
      this.deps.logger.error({ err: error, job_id: row.id }, "unfinished job cannot be queued again");
      return;
    }
    queue.publishJob(this.subjectFor(row.name), bytes);
  }

  /** `agent.execute.<graph name>`, the name reduced to one subject token. */
  private subjectFor(name: string): string {
    return name.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64) || "job";
  }

  private submissionBytes(row: {
    id: string;
    traceId: string;
    definition: unknown;
    input: unknown;
    organizationId: string;
  }) {
    return structuredBytes(
      jobSubmission(
        {
          job_id: row.id,
          trace_id: row.traceId,
          agent_definition: row.definition,
          input_payload: row.input,
          organization_id: row.organizationId,
        },
        "steward/api",
      ),
    );
  }
}

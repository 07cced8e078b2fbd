import { and, eq, inArray, isNull, lt, or, sql } from "drizzle-orm";
import type { Db } from "../db/database.js";
import { literalIn } from "../db/literal-in.js";
import { selectPage } from "../db/paginate.js";
import { type JobRow, jobDeadLetters, jobs } from "../db/schema.js";
import { TickBatcher, type TickBatcherOptions } from "../db/tick-batcher.js";
import { NotFoundError } from "../errors.js";
import type { Page, PageRequest } from "../http/pagination.js";
import { type ClaimRequest, claimJobs, type FinishRequest, finishJobs } from "./job-batches.js";
import type { JobOutcome } from "./job-event.js";
import type { JobError, NewJob } from "./job-record.js";

/** A job's input of JSON `null`: SQL NULL would break the NOT NULL column. */
const JSON_NULL = sql`'null'::jsonb`;

export type JobStatus = "queued" | "running" | "completed" | "failed" | "cancelled";
export const FINAL_STATUSES: readonly JobStatus[] = ["completed", "failed", "cancelled"];

export interface DeadLetter {
  subject: string;
  raw: Uint8Array;
  headers: Record<string, string[]>;
  reason: string;
  jobId?: string;
  deliveries: number;
}

/** What claiming a job for a run found. */
export type JobClaim =
  | { kind: "started"; row: JobRow }
  | { kind: "final"; row: JobRow }
  | { kind: "leased"; retryInMs: number };

/** A final job's outcome as its result event announces it. */
export function outcomeOf(row: JobRow): JobOutcome {
  if (row.status === "completed") return { kind: "completed", result: row.result };
  const error = row.error as JobError | null;
  return { kind: "failed", error: error ?? { message: row.status, type: "Error" } };
}

export function toJobView(row: JobRow, checkpoints?: number) {
  return {
    id: row.id,
    organization_id: row.organizationId,
    name: row.name,
    trace_id: row.traceId,
    status: row.status as JobStatus,
    result: row.result ?? null,
    error: (row.error as JobError | null) ?? null,
    attempts: row.attempts,
    source: row.source,
    cancel_requested: row.cancelRequested,
    ...(checkpoints === undefined ? {} : { checkpoints }),
    created_at: row.createdAt.toISOString(),
    started_at: row.startedAt?.toISOString() ?? null,
    finished_at: row.finishedAt?.toISOString() ?? null,
  };
}

/**
 * Jobs and their lifecycle in the database. The job id is the primary key, so a job
 * submitted twice — by HTTP, by JetStream, or both — is one row and runs once.
 */
/** Jobs' writes: up to 512 per statement, two in flight, and a failed batch retried item by item. */
export const JOB_WRITES: TickBatcherOptions = { maxBatch: 512, writers: 2, isolates: () => true };

export class JobStore {
  /** What all the jobs arriving and finishing now write, each batch in one statement. */
  private readonly published: TickBatcher<string, void>;
  private readonly claims: TickBatcher<ClaimRequest, JobRow | undefined>;
  private readonly outcomes: TickBatcher<FinishRequest, JobRow | undefined>;
  /** Seen to exist once: it is never dropped. */
  private checkpointTable = false;

  constructor(private readonly db: Db) {
    this.published = new TickBatcher(async (ids) => {
      await db
        .update(jobs)
        .set({ resultPublishedAt: sql`now()` })
        .where(sql`${jobs.id} = any(${sql.param(ids)}::text[])`);
      return [];
    }, JOB_WRITES);
    this.claims = new TickBatcher((requests) => claimJobs(db, requests), JOB_WRITES);
    this.outcomes = new TickBatcher((requests) => finishJobs(db, requests), JOB_WRITES);
  }

  /** Records a job; `created` is false when one with this id already exists (whatever its organization). */
  async create(job: NewJob): Promise<{ row: JobRow; created: boolean }> {
    const [inserted] = await this.db
      .insert(jobs)
      .values({ ...job, definition: job.definition, input: job.input ?? JSON_NULL })
      .onConflictDoNothing({ target: jobs.id })
      .returning();
    if (inserted) return { row: inserted, created: true };
    const existing = await this.find(job.id);
    if (!existing) throw new Error(`job ${job.id} neither inserted nor found`);
    return { row: existing, created: false };
  }

  async find(id: string): Promise<JobRow | undefined> {
    const [row] = await this.db.select().from(jobs).where(eq(jobs.id, id));
    return row;
  }

  async get(organizationId: string, id: string): Promise<JobRow> {
    const [row] = await this.db
      .select()
      .from(jobs)
      .where(and(eq(jobs.id, id), eq(jobs.organizationId, organizationId)));
    if (!row) throw new NotFoundError("job", id);
    return row;
  }

  async list(
    organizationId: string,
    filters: { status?: JobStatus },
    page: PageRequest,
  ): Promise<Page<ReturnType<typeof toJobView>>> {
    const where = and(
      eq(jobs.organizationId, organizationId),
      filters.status ? eq(jobs.status, filters.status) : undefined,
    );
    return selectPage(
      this.db,
      jobs,
      where,
      [sql`${jobs.createdAt} DESC`, sql`${jobs.id} DESC`],
      page,
      (row) => toJobView(row),
    );
  }

  /**
   * How many checkpoints LangGraph's Postgres saver holds for the job (its thread), counted
   * in its `checkpoints` table rather than by loading each one through the saver's list().
   */
  async checkpointCount(id: string): Promise<number> {
    if (!(await this.checkpointTableMade())) return 0;
    const { rows } = await this.db.execute<{ count: number }>(
      sql`select count(*)::int as count from checkpoints where thread_id = ${id} and checkpoint_ns = ''`,
    );
    return rows[0]?.count ?? 0;
  }

  /** The table comes with the first job any process runs on this database (see JobGraphs). */
  private async checkpointTableMade(): Promise<boolean> {
    if (!this.checkpointTable) {
      const { rows } = await this.db.execute<{ made: boolean }>(
        sql`select to_regclass('checkpoints') is not null as made`,
      );
      this.checkpointTable = rows[0]?.made === true;
    }
    return this.checkpointTable;
  }

  /**
   * Claims the job for `leaseMs` and counts one more attempt: from `queued`, or from
   * `running` when its previous worker's lease has run out (it crashed). Otherwise the
   * job is final, or another worker holds it for `retryInMs` more.
   */
  async start(id: string, leaseMs: number, finalDelivery: boolean): Promise<JobClaim> {
    const [row] = await this.db
      .update(jobs)
      .set({
        status: "running",
        finalDelivery,
        attempts: sql`${jobs.attempts} + 1`,
        startedAt: sql`coalesce(${jobs.startedAt}, now())`,
        leaseUntil: sql`now() + make_interval(secs => ${leaseMs / 1000})`,
        updatedAt: new Date(),
      })
      .where(
        and(
          eq(jobs.id, id),
          or(
            eq(jobs.status, "queued"),
            and(eq(jobs.status, "running"), or(isNull(jobs.leaseUntil), lt(jobs.leaseUntil, sql`now()`))),
          ),
        ),
      )
      .returning();
    return row ? { kind: "started", row } : this.unclaimable(id);
  }

  /**
   * Records the job and claims it, in one statement with the other jobs arriving now: a new
   * job starts at once; one seen before (whatever its organization) is claimed as start()
   * would. For a broker that delivers many jobs: far fewer round trips than create() and then
   * start() for each.
   */
  async createAndStart(job: NewJob, leaseMs: number, finalDelivery: boolean): Promise<JobClaim> {
    const row = await this.claims.submit({ job, leaseSeconds: leaseMs / 1000, finalDelivery });
    return row ? { kind: "started", row } : this.unclaimable(job.id);
  }

  /** Why a job could not be claimed: it is final, or another worker holds its lease. */
  private async unclaimable(id: string): Promise<JobClaim> {
    const [current] = await this.db
      .select({
        row: jobs,
        leftMs: sql<number>`greatest(0, extract(epoch from (${jobs.leaseUntil} - now())) * 1000)::float8`,
      })
      .from(jobs)
      .where(eq(jobs.id, id));
    if (!current) throw new NotFoundError("job", id);
    if (FINAL_STATUSES.includes(current.row.status as JobStatus)) return { kind: "final", row: current.row };
    // Lost the race for the lease by a moment: another worker holds it now.
    return { kind: "leased", retryInMs: Math.ceil(Number(current.leftMs ?? 0)) };
  }

  /**
   * Keeps the job's lease while its worker runs it: renews every `everyMs` (calling
   * `onRenew` too, for the broker's own keep-alive). Answers the function that stops it.
   */
  holdLease(
    id: string,
    leaseMs: number,
    everyMs: number,
    onFailure: (error: unknown) => void,
    onRenew = () => {},
  ) {
    const timer = setInterval(() => {
      try {
        onRenew();
      } catch (error) {
        // The broker's keep-alive throws once its connection is closed (a job left running
        // past the shutdown deadline): reported, never thrown out of the timer.
        onFailure(error);
      }
      this.renew(id, leaseMs).catch(onFailure);
    }, everyMs);
    return () => clearInterval(timer);
  }

  /** Notes that the job's result event reached the broker (with those of other jobs finishing now). */
  /** Removes a job recorded a moment ago whose queueing failed, unless something took it already. */
  async forgetQueued(id: string): Promise<void> {
    await this.db.delete(jobs).where(and(eq(jobs.id, id), eq(jobs.status, "queued")));
  }

  markPublished(id: string): Promise<void> {
    return this.published.submit(id);
  }

  /** Gives the job up for the next delivery to take (this attempt failed and will be retried). */
  async release(id: string): Promise<void> {
    await this.db
      .update(jobs)
      // Since when it has waited for that delivery: see `lost`.
      .set({ leaseUntil: null, updatedAt: new Date() })
      .where(and(eq(jobs.id, id), eq(jobs.status, "running")));
  }

  /** Extends the running job's lease (its worker is alive and working). */
  async renew(id: string, leaseMs: number): Promise<void> {
    await this.db
      .update(jobs)
      .set({ leaseUntil: sql`now() + make_interval(secs => ${leaseMs / 1000})` })
      .where(and(eq(jobs.id, id), eq(jobs.status, "running")));
  }

  /** Records the outcome once and answers the final job; a job already final keeps its first outcome (undefined then). */
  finish(
    id: string,
    outcome: { status: "completed"; result: unknown } | { status: "failed" | "cancelled"; error: JobError },
  ): Promise<JobRow | undefined> {
    return this.outcomes.submit({ id, outcome });
  }

  /** Asks a queued or running job to stop; false when it is already final. */
  async requestCancel(organizationId: string, id: string): Promise<boolean> {
    await this.get(organizationId, id);
    const [row] = await this.db
      .update(jobs)
      .set({ cancelRequested: true, updatedAt: new Date() })
      .where(and(eq(jobs.id, id), inArray(jobs.status, ["queued", "running"])))
      .returning({ id: jobs.id });
    return row !== undefined;
  }

  async cancelRequested(id: string): Promise<boolean> {
    const [row] = await this.db
      .select({ cancelRequested: jobs.cancelRequested })
      .from(jobs)
      .where(eq(jobs.id, id));
    return row?.cancelRequested ?? false;
  }

  /**
   * Running jobs no worker has held for `forMs` since the broker's last delivery of them
   * claimed them: their lease ran out (or they were given back) that long ago, and no
   * delivery can come any more. A job claimed by an earlier delivery is waiting for the
   * next, while workers are busy or away — for up to `waitingForMs`, past which the broker
   * is taken to have given it up too (a consumer recreated, deliveries spent on a job
   * leased elsewhere).
   */
  async lost(forMs: number, waitingForMs: number, limit: number): Promise<JobRow[]> {
    const unheldSince = (ms: number) => {
      const since = sql`now() - make_interval(secs => ${ms / 1000})`;
      return or(lt(jobs.leaseUntil, since), and(isNull(jobs.leaseUntil), lt(jobs.updatedAt, since)));
    };
    return this.db
      .select()
      .from(jobs)
      .where(
        and(
          literalIn(jobs.status, ["running"]),
          or(
            and(or(isNull(jobs.finalDelivery), eq(jobs.finalDelivery, true)), unheldSince(forMs)),
            and(eq(jobs.finalDelivery, false), unheldSince(waitingForMs)),
          ),
        ),
      )
      .limit(limit);
  }

  /** Jobs this process should pick up again after a restart (in process: no broker kept them). */
  async unfinished(sources: NewJob["source"][]): Promise<JobRow[]> {
    return this.db
      .select()
      .from(jobs)
      .where(and(inArray(jobs.source, sources), literalIn(jobs.status, ["queued", "running"])));
  }

  /** Clears every lease on unfinished jobs of `sources`: only for a process that knows it is the only one. */
  async releaseUnfinished(sources: NewJob["source"][]): Promise<void> {
    await this.db
      .update(jobs)
      .set({ leaseUntil: null })
      .where(and(inArray(jobs.source, sources), literalIn(jobs.status, ["running"])));
  }

  async deadLetter(letter: DeadLetter): Promise<void> {
    await this.db.insert(jobDeadLetters).values({
      subject: letter.subject,
      raw: Buffer.from(letter.raw),
      headers: letter.headers,
      reason: letter.reason.slice(0, 2000),
      jobId: letter.jobId ?? null,
      deliveries: letter.deliveries,
    });
  }
}

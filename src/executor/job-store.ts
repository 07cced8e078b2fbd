import { and, eq, inArray, isNull, lt, or, sql } from "drizzle-orm";
import type { Db } from "../db/database.js";
import { selectPage } from "../db/paginate.js";
import { type JobRow, jobDeadLetters, jobs } from "../db/schema.js";
import { NotFoundError } from "../errors.js";
import type { Page, PageRequest } from "../http/pagination.js";

export type JobStatus = "queued" | "running" | "completed" | "failed" | "cancelled";
export const FINAL_STATUSES: readonly JobStatus[] = ["completed", "failed", "cancelled"];

export interface NewJob {
  id: string;
  organizationId: string;
  traceId: string;
  name: string;
  definition: Record<string, unknown>;
  input: unknown;
  source: "http" | "jetstream" | "cloudevent";
  createdBy: string | null;
}

export interface JobError {
  message: string;
  type: string;
  stack_trace?: string;
}

export interface DeadLetter {
  subject: string;
  raw: Uint8Array;
  headers: Record<string, string[]>;
  reason: string;
  jobId?: string;
  deliveries: number;
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
export class JobStore {
  constructor(private readonly db: Db) {}

  /** Records a job; `created` is false when one with this id already exists (whatever its organization). */
  async create(job: NewJob): Promise<{ row: JobRow; created: boolean }> {
    const [inserted] = await this.db
      .insert(jobs)
      .values({ ...job, definition: job.definition, input: job.input ?? null })
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
    const { rows } = await this.db.execute<{ count: number }>(
      sql`select count(*)::int as count from checkpoints where thread_id = ${id} and checkpoint_ns = ''`,
    );
    return rows[0]?.count ?? 0;
  }

  /**
   * Claims the job for `leaseMs` and counts one more attempt: from `queued`, or from
   * `running` when its previous worker's lease has run out (it crashed). Undefined when
   * the job is final or another worker holds it.
   */
  async start(id: string, leaseMs: number): Promise<JobRow | undefined> {
    const [row] = await this.db
      .update(jobs)
      .set({
        status: "running",
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
    return row;
  }

  /** Gives the job up for the next delivery to take (this attempt failed and will be retried). */
  async release(id: string): Promise<void> {
    await this.db
      .update(jobs)
      .set({ leaseUntil: null })
      .where(and(eq(jobs.id, id), eq(jobs.status, "running")));
  }

  /** Extends the running job's lease (its worker is alive and working). */
  async renew(id: string, leaseMs: number): Promise<void> {
    await this.db
      .update(jobs)
      .set({ leaseUntil: sql`now() + make_interval(secs => ${leaseMs / 1000})` })
      .where(and(eq(jobs.id, id), eq(jobs.status, "running")));
  }

  /** Records the outcome once: a job already final keeps its first outcome (false then). */
  async finish(
    id: string,
    outcome: { status: "completed"; result: unknown } | { status: "failed" | "cancelled"; error: JobError },
  ): Promise<boolean> {
    const [row] = await this.db
      .update(jobs)
      .set({
        status: outcome.status,
        result: outcome.status === "completed" ? (outcome.result ?? null) : null,
        error: outcome.status === "completed" ? null : { ...outcome.error },
        finishedAt: new Date(),
        leaseUntil: null,
        updatedAt: new Date(),
      })
      .where(and(eq(jobs.id, id), inArray(jobs.status, ["queued", "running"])))
      .returning({ id: jobs.id });
    return row !== undefined;
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

  /** Jobs this process should pick up again after a restart (embedded mode: no broker kept them). */
  async unfinished(source: NewJob["source"]): Promise<JobRow[]> {
    return this.db
      .select()
      .from(jobs)
      .where(and(eq(jobs.source, source), inArray(jobs.status, ["queued", "running"])));
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

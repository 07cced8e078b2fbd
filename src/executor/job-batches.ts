import { getTableColumns, sql } from "drizzle-orm";
import type { Db } from "../db/database.js";
import { type JobRow, jobs } from "../db/schema.js";
import type { JobError, NewJob } from "./job-record.js";

/**
 * The two statements every job delivered by the broker makes, for many jobs at once: each
 * takes one array per column, so it is the same statement whatever the batch's size.
 * Callers go through a TickBatcher that retries a failed batch item by item: a batch
 * that holds one job id twice (the database refuses to change a row twice in one
 * statement) or a job of an unknown organization then fails for that item alone.
 */

export interface ClaimRequest {
  job: NewJob;
  leaseSeconds: number;
  /** The broker delivers the job no more after this (see JobStore.lost). */
  finalDelivery: boolean;
}

/** Records and claims each job (see JobStore.createAndStart); its row, or undefined when not claimable. */
export async function claimJobs(db: Db, requests: ClaimRequest[]): Promise<(JobRow | undefined)[]> {
  const column = <V>(value: (request: ClaimRequest) => V) => sql.param(requests.map(value));
  const { rows } = await db.execute<Record<string, unknown>>(sql`
    insert into ${jobs} (id, organization_id, trace_id, name, definition, input, source, created_by,
                         status, attempts, started_at, lease_until, final_delivery)
    select id, organization_id, trace_id, name, definition::jsonb, input::jsonb, source, created_by,
           'running', 1, now(), now() + make_interval(secs => lease_seconds), final_delivery
    from unnest(
      ${column(({ job }) => job.id)}::text[],
      ${column(({ job }) => job.organizationId)}::text[],
      ${column(({ job }) => job.traceId)}::text[],
      ${column(({ job }) => job.name)}::text[],
      ${column(({ job }) => JSON.stringify(job.definition))}::text[],
      ${column(({ job }) => JSON.stringify(job.input ?? null))}::text[],
      ${column(({ job }) => job.source)}::text[],
      ${column(({ job }) => job.createdBy)}::text[],
      ${column(({ leaseSeconds }) => leaseSeconds)}::float8[],
      ${column(({ finalDelivery }) => finalDelivery)}::boolean[]
    ) as job(id, organization_id, trace_id, name, definition, input, source, created_by, lease_seconds,
             final_delivery)
    on conflict (id) do update set
      status = 'running',
      attempts = ${jobs}.attempts + 1,
      started_at = coalesce(${jobs}.started_at, now()),
      lease_until = excluded.lease_until,
      final_delivery = excluded.final_delivery,
      updated_at = now()
    where ${jobs}.status = 'queued'
       or (${jobs}.status = 'running' and (${jobs}.lease_until is null or ${jobs}.lease_until < now()))
    returning *`);
  const claimed = new Map(rows.map((raw) => [raw.id as string, jobRowFrom(raw)]));
  return requests.map(({ job }) => claimed.get(job.id));
}

export interface FinishRequest {
  id: string;
  outcome: { status: "completed"; result: unknown } | { status: "failed" | "cancelled"; error: JobError };
}

/** Stores each outcome once (see JobStore.finish); the final row, or undefined when the job already had one. */
export async function finishJobs(db: Db, requests: FinishRequest[]): Promise<(JobRow | undefined)[]> {
  // Of one job's outcomes in a batch the first is stored, as it would be one after the other.
  const first = new Map<string, FinishRequest>();
  for (const request of requests) if (!first.has(request.id)) first.set(request.id, request);
  const unique = [...first.values()];
  const column = <V>(value: (request: FinishRequest) => V) => sql.param(unique.map(value));
  const { rows } = await db.execute<Record<string, unknown>>(sql`
    update ${jobs} set
      status = outcome.status,
      result = outcome.result::jsonb,
      error = outcome.error::jsonb,
      finished_at = now(),
      lease_until = null,
      updated_at = now()
    from unnest(
      ${column(({ id }) => id)}::text[],
      ${column(({ outcome }) => outcome.status)}::text[],
      ${column(({ outcome }) => (outcome.status === "completed" ? jsonOrNull(outcome.result) : null))}::text[],
      ${column(({ outcome }) => (outcome.status === "completed" ? null : JSON.stringify(outcome.error)))}::text[]
    ) as outcome(id, status, result, error)
    where ${jobs}.id = outcome.id and ${jobs}.status in ('queued', 'running')
    returning ${jobs}.*`);
  const finished = new Map(rows.map((raw) => [raw.id as string, jobRowFrom(raw)]));
  return requests.map((request) =>
    first.get(request.id) === request ? finished.get(request.id) : undefined,
  );
}

/** JSON text for a jsonb parameter; SQL NULL for nothing. */
function jsonOrNull(value: unknown): string | null {
  return value === undefined || value === null ? null : JSON.stringify(value);
}

/** A `returning *` row of jobs as Drizzle's JobRow, each column decoded as Drizzle decodes it. */
function jobRowFrom(raw: Record<string, unknown>): JobRow {
  const row: Record<string, unknown> = {};
  for (const [key, column] of Object.entries(getTableColumns(jobs))) {
    const value = raw[column.name];
    row[key] = value === null || value === undefined ? null : column.mapFromDriverValue(value);
  }
  return row as JobRow;
}

import { and, desc, eq, gte, ilike, inArray, lt, type SQL, sql } from "drizzle-orm";
import type { PgColumn, PgTable } from "drizzle-orm/pg-core";
import type { Db } from "../db/database.js";
import { selectRows } from "../db/paginate.js";
import { managedAgentLogs, managedAgentMetrics } from "../db/schema.js";
import type { Page, PageRequest } from "../http/pagination.js";
import { toPage } from "../http/pagination.js";
import { storableText } from "../invocation/storable-text.js";

/** Log levels, least severe first (the order `minLevel` filters by). */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;
/** One of LOG_LEVELS. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The managed agent telemetry belongs to. */
export interface AgentRef {
  id: string;
  organizationId: string;
}

/** A log line as an agent reports it. */
export interface LogEntry {
  level: LogLevel;
  message: string;
  context: Record<string, unknown>;
  loggedAt: Date;
}

/** One bucket of a metric series. */
export interface MetricPoint {
  /** ISO start of the bucket. */
  t: string;
  count: number;
  sum: number;
  avg: number;
  min: number;
  max: number;
}

/** A stored log line as the API shows it. */
export interface LogView {
  id: number;
  level: LogLevel;
  message: string;
  context: Record<string, unknown>;
  logged_at: string;
}

/** Longer messages are cut to this many UTF-16 units: a runaway stack trace must not bloat the table. */
export const MAX_LOG_MESSAGE_LENGTH = 8_000;
/** A context whose JSON is larger (in bytes) is stored as {truncated: true}. */
export const MAX_LOG_CONTEXT_BYTES = 16 * 1024;

// Each statement stays well below PostgreSQL's 65,535 bind parameters (6 per log row).
const INSERT_CHUNK = 1_000;
const DEFAULT_PRUNE_BATCH = 5_000;

function chunks<T>(items: T[], size: number): T[][] {
  const result: T[][] = [];
  for (let i = 0; i < items.length; i += size) result.push(items.slice(i, i + size));
  return result;
}

function likePattern(term: string): string {
  return `%${term.replace(/[\\%_]/g, (char) => `\\${char}`)}%`;
}

function storableContext(context: Record<string, unknown>): Record<string, unknown> {
  const safe = storableText(context);
  return Buffer.byteLength(JSON.stringify(safe)) > MAX_LOG_CONTEXT_BYTES ? { truncated: true } : safe;
}

/** Metrics and logs of managed agents, in PostgreSQL. */
export class TelemetryStore {
  private readonly pruneBatch: number;

  /** `pruneBatch` is the most rows one retention DELETE removes (tests make it small). */
  constructor(
    private readonly db: Db,
    options: { pruneBatch?: number } = {},
  ) {
    this.pruneBatch = options.pruneBatch ?? DEFAULT_PRUNE_BATCH;
  }

  /** One row per named value; names are the agent's own (events_processed, cpu, custom names). */
  async recordMetrics(agent: AgentRef, recordedAt: Date, values: Record<string, number>): Promise<void> {
    // NaN and ±Infinity would poison every sum and average they fall into.
    const rows = Object.entries(values)
      .filter(([, value]) => Number.isFinite(value))
      .map(([name, value]) => ({
        agentId: agent.id,
        organizationId: agent.organizationId,
        name: storableText(name),
        value,
        recordedAt,
      }));
    for (const chunk of chunks(rows, INSERT_CHUNK)) await this.db.insert(managedAgentMetrics).values(chunk);
  }

  /** Stores log lines, cutting over-long messages and over-large contexts. */
  async recordLogs(agent: AgentRef, entries: LogEntry[]): Promise<void> {
    const rows = entries.map((entry) => ({
      agentId: agent.id,
      organizationId: agent.organizationId,
      level: entry.level,
      // Cut before storableText so a surrogate pair split by the cut becomes U+FFFD.
      message: storableText(entry.message.slice(0, MAX_LOG_MESSAGE_LENGTH)),
      context: storableContext(entry.context),
      loggedAt: entry.loggedAt,
    }));
    for (const chunk of chunks(rows, INSERT_CHUNK)) await this.db.insert(managedAgentLogs).values(chunk);
  }

  /** Aggregated series per metric name in [from, to), in buckets of `stepS` seconds from the epoch; empty buckets omitted. */
  async metricSeries(
    organizationId: string,
    agentId: string,
    query: { name?: string; from: Date; to: Date; stepS: number },
  ): Promise<Array<{ name: string; points: MetricPoint[] }>> {
    if (!Number.isSafeInteger(query.stepS) || query.stepS <= 0) {
      throw new RangeError(`stepS must be a positive integer, got ${query.stepS}`);
    }
    const m = managedAgentMetrics;
    // The step is inlined (a checked integer), not bound: SELECT and GROUP BY must hold
    // the same expression, and two bind parameters are two expressions to PostgreSQL.
    const bucket = sql`date_bin(make_interval(secs => ${sql.raw(String(query.stepS))}), ${m.recordedAt}, timestamptz 'epoch')`;
    const conditions: SQL[] = [
      eq(m.organizationId, organizationId),
      eq(m.agentId, agentId),
      gte(m.recordedAt, query.from),
      lt(m.recordedAt, query.to),
    ];
    if (query.name !== undefined) conditions.push(eq(m.name, query.name));
    const rows = await this.db
      .select({
        name: m.name,
        // Drizzle hands timestamptz over as text; the column's mapper makes it a Date.
        t: bucket.mapWith(m.recordedAt),
        count: sql<number>`count(*)::int`,
        sum: sql<number>`sum(${m.value})`,
        avg: sql<number>`avg(${m.value})`,
        min: sql<number>`min(${m.value})`,
        max: sql<number>`max(${m.value})`,
      })
      .from(m)
      .where(and(...conditions))
      .groupBy(m.name, bucket)
      .orderBy(m.name, bucket);
    const series = new Map<string, MetricPoint[]>();
    for (const { name, t, ...stats } of rows) {
      const points = series.get(name) ?? [];
      if (points.length === 0) series.set(name, points);
      points.push({ t: t.toISOString(), ...stats });
    }
    return [...series].map(([name, points]) => ({ name, points }));
  }

  /** Sum of each named metric recorded since `since` (for error-rate alert rules); missing names are 0. */
  async metricSums(agentId: string, names: string[], since: Date): Promise<Record<string, number>> {
    const sums: Record<string, number> = Object.fromEntries(names.map((name) => [name, 0]));
    if (names.length === 0) return sums;
    const m = managedAgentMetrics;
    const rows = await this.db
      .select({ name: m.name, sum: sql<number>`sum(${m.value})` })
      .from(m)
      .where(and(eq(m.agentId, agentId), inArray(m.name, names), gte(m.recordedAt, since)))
      .groupBy(m.name);
    for (const row of rows) sums[row.name] = row.sum;
    return sums;
  }

  /** The latest value of each metric name (for health). */
  async latestMetrics(
    organizationId: string,
    agentId: string,
  ): Promise<Record<string, { value: number; recorded_at: string }>> {
    const m = managedAgentMetrics;
    // DISTINCT ON walks the (agent_id, name, recorded_at) index; retention bounds its length.
    const rows = await this.db
      .selectDistinctOn([m.name], { name: m.name, value: m.value, recordedAt: m.recordedAt })
      .from(m)
      .where(and(eq(m.organizationId, organizationId), eq(m.agentId, agentId)))
      .orderBy(m.name, desc(m.recordedAt));
    return Object.fromEntries(
      rows.map((row) => [row.name, { value: row.value, recorded_at: row.recordedAt.toISOString() }]),
    );
  }

  /** Newest first; `minLevel` keeps that level and more severe ones; `q` matches the message case-insensitively. */
  async logs(
    organizationId: string,
    agentId: string,
    query: { minLevel?: LogLevel; q?: string; from?: Date; to?: Date },
    page: PageRequest,
  ): Promise<Page<LogView>> {
    const l = managedAgentLogs;
    const conditions: SQL[] = [eq(l.organizationId, organizationId), eq(l.agentId, agentId)];
    if (query.minLevel) {
      conditions.push(inArray(l.level, LOG_LEVELS.slice(LOG_LEVELS.indexOf(query.minLevel))));
    }
    if (query.q) conditions.push(ilike(l.message, likePattern(query.q)));
    if (query.from) conditions.push(gte(l.loggedAt, query.from));
    if (query.to) conditions.push(lt(l.loggedAt, query.to));
    const where = and(...conditions);
    const { rows, total } = await selectRows(this.db, l, where, [desc(l.loggedAt), desc(l.id)], page);
    const items = rows.map(
      (row): LogView => ({
        id: row.id,
        level: row.level as LogLevel,
        message: row.message,
        context: row.context,
        logged_at: row.loggedAt.toISOString(),
      }),
    );
    return toPage(items, total, page);
  }

  /** Retention: deletes metrics and logs older than `cutoff`, in batches so no statement holds a long lock. */
  async pruneOlderThan(cutoff: Date): Promise<{ metrics: number; logs: number }> {
    const metrics = await this.deleteInBatches(managedAgentMetrics, managedAgentMetrics.recordedAt, cutoff);
    const logs = await this.deleteInBatches(managedAgentLogs, managedAgentLogs.loggedAt, cutoff);
    return { metrics, logs };
  }

  /**
   * Deletes the rows of `table` whose `time` is before `cutoff`, a batch at a time. Rows are
   * named by ctid: telemetry is never updated, so a row's ctid is stable, and the delete
   * fetches each row directly, where matching by key let the planner read the whole table
   * for every batch.
   */
  private async deleteInBatches(table: PgTable, time: PgColumn, cutoff: Date): Promise<number> {
    let total = 0;
    for (;;) {
      const result = await this.db.execute(
        sql`DELETE FROM ${table} WHERE ctid IN (SELECT ctid FROM ${table} WHERE ${time} < ${cutoff} LIMIT ${this.pruneBatch})`,
      );
      const deleted = result.rowCount ?? 0;
      total += deleted;
      if (deleted < this.pruneBatch) return total;
    }
  }
}

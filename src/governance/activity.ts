import { type SQL, sql } from "drizzle-orm";
import type { Db } from "../db/database.js";
import { invocations } from "../db/schema.js";
import { ValidationError } from "../errors.js";
import { ID_PREFIXES, newId } from "../ids.js";

/** Governance decisions per time bucket, read from the invocation records. */

export const ACTIVITY_BUCKETS = ["minute", "hour", "day"] as const;
export type ActivityBucket = (typeof ACTIVITY_BUCKETS)[number];

/** The most buckets one answer holds. */
export const MAX_ACTIVITY_BUCKETS = 500;

const BUCKET_MS: Record<ActivityBucket, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/**
 * The same lengths as PostgreSQL intervals. A day is "24 hours", never "1 day": the
 * latter follows the session time zone across daylight-saving changes, and buckets are
 * UTC days.
 */
const BUCKET_INTERVAL: Record<ActivityBucket, string> = {
  minute: "1 minute",
  hour: "1 hour",
  day: "24 hours",
};

/** Without `from`: a day back, or an hour of minutes (a day of them is over the bucket cap). */
const DEFAULT_SPAN_MS: Record<ActivityBucket, number> = {
  minute: 60 * 60_000,
  hour: 24 * 3_600_000,
  day: 24 * 3_600_000,
};

export const DECISIONS = [
  "allowed",
  "rate_limited",
  "budget_exceeded",
  "policy_denied",
  "pending_approval",
] as const;
export type Decision = (typeof DECISIONS)[number];

/**
 * Every status an invocation can have (the status check of migrations/0004_approvals.sql)
 * and the governance decision it stands for. A call that passed governance is `allowed`
 * whatever the agent then did; a call held for approval stays `pending_approval` once
 * rejected or expired, and becomes `allowed` (or `policy_denied`) once approved.
 */
export const DECISION_BY_STATUS = {
  running: "allowed",
  success: "allowed",
  failure: "allowed",
  timeout: "allowed",
  error: "allowed",
  rate_limited: "rate_limited",
  budget_exceeded: "budget_exceeded",
  policy_denied: "policy_denied",
  pending_approval: "pending_approval",
  approval_rejected: "pending_approval",
  approval_expired: "pending_approval",
} as const satisfies Record<string, Decision>;

export interface ActivityRangeQuery {
  from?: string;
  to?: string;
  bucket?: ActivityBucket;
}

/** A range of whole buckets: `from` inclusive, `to` exclusive. */
export interface ActivityRange {
  from: Date;
  to: Date;
  bucket: ActivityBucket;
}

export interface ActivityPoint {
  start: Date;
  decisions: Record<Decision, number>;
  spendUsd: number;
  invocations: number;
}

function instant(value: string, field: string): Date {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) {
    throw new ValidationError([{ field, message: "must be an ISO 8601 date-time" }]);
  }
  return date;
}

/**
 * The range a query asks for, widened to whole UTC buckets (`from` down, `to` up).
 * Refuses an empty or reversed range and one of more than MAX_ACTIVITY_BUCKETS buckets.
 */
export function resolveActivityRange(query: ActivityRangeQuery, now: Date): ActivityRange {
  const bucket = query.bucket ?? "hour";
  const step = BUCKET_MS[bucket];
  const to = query.to === undefined ? now : instant(query.to, "to");
  const from =
    query.from === undefined ? new Date(to.getTime() - DEFAULT_SPAN_MS[bucket]) : instant(query.from, "from");
  if (from.getTime() >= to.getTime()) {
    throw new ValidationError([{ field: "from", message: `must be before to (${to.toISOString()})` }]);
  }
  const start = Math.floor(from.getTime() / step) * step;
  const end = Math.ceil(to.getTime() / step) * step;
  const buckets = (end - start) / step;
  if (buckets > MAX_ACTIVITY_BUCKETS) {
    throw new ValidationError([
      {
        field: "from",
        message: `the range holds ${buckets} ${bucket} buckets, more than ${MAX_ACTIVITY_BUCKETS}: narrow it or use a larger bucket`,
      },
    ]);
  }
  return { from: new Date(start), to: new Date(end), bucket };
}

/**
 * The smallest invocation id created at `ms` or later. Ids begin with their creation
 * time (src/ids.ts), the same instant as `created_at`, so a range of ids is a range of
 * time that the (organization_id, id) and (organization_id, external_agent_id, id)
 * indexes can serve; there is no index on created_at.
 */
function firstIdAt(ms: number): string {
  return newId("invocation", ms).slice(0, ID_PREFIXES.invocation.length + 1 + 10);
}

const statusesOf = (decision: Decision) =>
  Object.entries(DECISION_BY_STATUS)
    .filter(([, mapped]) => mapped === decision)
    .map(([status]) => status);

interface ActivityRow extends Record<string, unknown> {
  start: Date | string;
  spend_usd: number | string;
  invocations: number;
}

export class GovernanceActivity {
  constructor(private readonly db: Db) {}

  /** One point per bucket of `range`, empty buckets included, for one organization (and agent). */
  async series(organizationId: string, range: ActivityRange, agentId?: string): Promise<ActivityPoint[]> {
    const interval = BUCKET_INTERVAL[range.bucket];
    const lastStart = new Date(range.to.getTime() - BUCKET_MS[range.bucket]);
    const decisionCounts = sql.join(
      DECISIONS.map((decision) => {
        const statuses = sql.join(
          statusesOf(decision).map((status) => sql`${status}`),
          sql`, `,
        );
        return sql`count(*) FILTER (WHERE ${invocations.status} IN (${statuses}))::int AS ${sql.identifier(decision)}`;
      }),
      sql`, `,
    );
    const decisionColumns = sql.join(
      DECISIONS.map(
        (decision) => sql`coalesce(activity.${sql.identifier(decision)}, 0) AS ${sql.identifier(decision)}`,
      ),
      sql`, `,
    );
    const conditions: SQL[] = [
      sql`${invocations.organizationId} = ${organizationId}`,
      sql`${invocations.id} >= ${firstIdAt(range.from.getTime())}`,
      sql`${invocations.id} < ${firstIdAt(range.to.getTime())}`,
      sql`${invocations.createdAt} >= ${range.from.toISOString()}::timestamptz`,
      sql`${invocations.createdAt} < ${range.to.toISOString()}::timestamptz`,
    ];
    if (agentId) conditions.push(sql`${invocations.externalAgentId} = ${agentId}`);

    const result = await this.db.execute<ActivityRow>(sql`
      WITH activity AS (
        SELECT date_bin(${interval}::interval, ${invocations.createdAt}, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS start,
               ${decisionCounts},
               coalesce(sum(${invocations.costUsd}), 0) AS spend_usd,
               count(*)::int AS invocations
        FROM ${invocations}
        WHERE ${sql.join(conditions, sql` AND `)}
        GROUP BY 1
      )
      SELECT buckets.start, ${decisionColumns},
             coalesce(activity.spend_usd, 0) AS spend_usd,
             coalesce(activity.invocations, 0) AS invocations
      FROM generate_series(${range.from.toISOString()}::timestamptz, ${lastStart.toISOString()}::timestamptz,
                           ${interval}::interval) AS buckets (start)
      LEFT JOIN activity ON activity.start = buckets.start
      ORDER BY buckets.start`);

    return result.rows.map((row) => ({
      start: new Date(row.start),
      decisions: Object.fromEntries(DECISIONS.map((decision) => [decision, Number(row[decision])])) as Record<
        Decision,
        number
      >,
      spendUsd: Number(row.spend_usd),
      invocations: Number(row.invocations),
    }));
  }
}

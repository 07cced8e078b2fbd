import { and, eq, inArray, sql } from "drizzle-orm";
import type { BudgetConfig } from "../../agents/governance-config.js";
import { type RequestContext, recordAudit } from "../../audit/audit.js";
import type { Db, DbOrTx } from "../../db/database.js";
import { budgetUsage } from "../../db/schema.js";
import type { EventOutbox } from "../../delivery/delivery-target.js";
import { type BudgetPeriod, periodWindow } from "./budget-period.js";

/**
 * Reserve-then-settle budgets. A reservation adds the estimated cost to `reserved` of
 * the agent's and the organization's day and month rows; the row locks it takes
 * serialise concurrent calls on every replica, and a call that would cross a hard cap
 * has its own increment taken back. Settling moves the reservation into `spent` at the
 * actual cost. Both work on batches of calls, one statement per batch.
 */

export type BudgetScope = "agent" | "organization";

export interface BudgetTarget {
  organizationId: string;
  agentId: string;
  agentBudget: BudgetConfig;
  organizationBudget: BudgetConfig;
}

export interface BudgetExceeded {
  scope: BudgetScope;
  period: BudgetPeriod | "invocation";
  /** What ran out: money, or the monthly number of executions. */
  kind: "cost" | "executions";
  budget_limit: number;
  budget_remaining: number;
  reset_at: string | null;
}

export interface Reservation {
  organizationId: string;
  agentId: string;
  amount: number;
  day: string;
  month: string;
}

export type ReserveResult =
  | { allowed: true; reservation: Reservation; degraded: boolean; softExceeded: BudgetExceeded[] }
  | { allowed: false; exceeded: BudgetExceeded };

export interface PeriodUsage {
  period: BudgetPeriod;
  period_start: string;
  reset_at: string;
  cost_used: number;
  reserved: number;
  invocations: number;
  limit: number | null;
  remaining: number | null;
  execution_limit: number | null;
  usage_percentage: number | null;
  warning: boolean;
  degraded: boolean;
  limit_reached: boolean;
}

/** Money as the database keeps it: numeric(20, 6). */
export const roundMoney = (value: number) => Math.round(value * 1e6) / 1e6;
const round = roundMoney;

/** The cost reserved before a call: the per-call estimate, or the per-call cap if that is larger. */
export function estimateCost(config: BudgetConfig): number {
  return Math.max(config.cost_per_execution ?? 0, config.max_cost_per_invocation ?? 0);
}

function costLimit(config: BudgetConfig, period: BudgetPeriod): number | undefined {
  return period === "day" ? config.max_daily_cost : config.max_monthly_cost;
}

export interface ReserveRequest {
  target: BudgetTarget;
  amount: number;
  now: Date;
}

/** A call's reservation moved into spend at its cost, or given back when the call never ran. */
export type Settlement =
  | { kind: "settle"; reservation: Reservation; cost: number; target: BudgetTarget; context: RequestContext }
  | { kind: "release"; reservation: Reservation };

/** One usage row: a scope's period. */
interface UsageKey {
  organizationId: string;
  scope: BudgetScope;
  scopeId: string;
  period: BudgetPeriod;
  periodStart: string;
}

interface Increment {
  key: UsageKey;
  amount: number;
  count: number;
  spent?: number;
}

interface UsageRow extends Record<string, unknown> {
  scope: BudgetScope;
  scope_id: string;
  period: BudgetPeriod;
  period_start: string;
  spent: number;
  reserved: number;
  invocations: number;
  warning_notified_at: Date | null;
  degradation_notified_at: Date | null;
}

const USAGE_COLUMNS = sql.raw(
  ["scope", "scope_id", "period", "period_start::text AS period_start", "spent", "reserved", "invocations"]
    .concat(["warning_notified_at", "degradation_notified_at"])
    .map((column) => `budget_usage.${column}`)
    .join(", "),
);

const keyId = (key: Pick<UsageKey, "scope" | "scopeId" | "period" | "periodStart"> | UsageRow): string =>
  "scopeId" in key
    ? `${key.scope}\u0000${key.scopeId}\u0000${key.period}\u0000${key.periodStart}`
    : `${key.scope}\u0000${key.scope_id}\u0000${key.period}\u0000${key.period_start}`;

function compareKeys(a: UsageKey, b: UsageKey): number {
  for (const field of ["scope", "scopeId", "period", "periodStart"] as const) {
    if (a[field] !== b[field]) return a[field] < b[field] ? -1 : 1;
  }
  return 0;
}

/** The four rows a call counts against: its agent's and its organization's day and month. */
function usageKeys({ target, now }: ReserveRequest): UsageKey[] {
  const windows = [periodWindow("day", now), periodWindow("month", now)];
  return (["agent", "organization"] as const).flatMap((scope) =>
    windows.map((window) => ({
      organizationId: target.organizationId,
      scope,
      scopeId: scope === "agent" ? target.agentId : target.organizationId,
      period: window.period,
      periodStart: window.start,
    })),
  );
}

function reservationKeys(reservation: Reservation): UsageKey[] {
  return (["agent", "organization"] as const).flatMap((scope) =>
    (["day", "month"] as const).map((period) => ({
      organizationId: reservation.organizationId,
      scope,
      scopeId: scope === "agent" ? reservation.agentId : reservation.organizationId,
      period,
      periodStart: period === "day" ? reservation.day : reservation.month,
    })),
  );
}

/** Increments of the same row added up: a statement may change each row once. */
function sumByKey(increments: readonly Increment[]): Map<string, Increment> {
  const sums = new Map<string, Increment>();
  for (const increment of increments) {
    const id = keyId(increment.key);
    const sum = sums.get(id);
    if (!sum) sums.set(id, { ...increment });
    else {
      sum.amount += increment.amount;
      sum.count += increment.count;
      sum.spent = (sum.spent ?? 0) + (increment.spent ?? 0);
    }
  }
  return sums;
}

const configOf = (target: BudgetTarget, scope: BudgetScope) =>
  scope === "agent" ? target.agentBudget : target.organizationBudget;

/** The per-call caps (agent, organization) that an estimate of `amount` crosses. */
function crossedPerCallCaps({ target, amount }: ReserveRequest) {
  return (["agent", "organization"] as const).flatMap((scope) => {
    const config = configOf(target, scope);
    const cap = config.max_cost_per_invocation;
    if (cap === undefined || amount <= cap) return [];
    const exceeded: BudgetExceeded = {
      scope,
      period: "invocation",
      kind: "cost",
      budget_limit: cap,
      budget_remaining: cap,
      reset_at: null,
    };
    return [{ exceeded, soft: config.enforcement_mode === "soft" }];
  });
}

/** A hard per-call cap the estimate already crosses refuses the call before any row is touched. */
function perCallCapExceeded(request: ReserveRequest): ReserveResult | undefined {
  const hard = crossedPerCallCaps(request).find((crossed) => !crossed.soft);
  return hard && { allowed: false, exceeded: hard.exceeded };
}

/**
 * A usage row as a batch's judgement walks it, money in whole micro-dollars: the sums of
 * a batch then equal, to the unit, what the database (numeric(20, 6)) adds up.
 */
interface RunningUsage {
  spent: number;
  reserved: number;
  invocations: number;
}

const micros = (amount: number) => Math.round(amount * 1e6);

/**
 * Judges one call against its rows as they stood before it (`running`): refused at the
 * first hard cap it would cross, degraded by soft ones.
 */
function judgeReservation(
  request: ReserveRequest,
  keys: readonly UsageKey[],
  running: ReadonlyMap<string, RunningUsage>,
): ReserveResult {
  const { target, amount, now } = request;
  // Hard per-call caps refused the call before this; the soft ones crossed are noted.
  const softExceeded = crossedPerCallCaps(request).map((crossed) => crossed.exceeded);
  for (const key of keys) {
    const row = running.get(keyId(key)) as RunningUsage;
    const config = configOf(target, key.scope);
    const resetAt = periodWindow(key.period, now).resetAt.toISOString();
    const found: BudgetExceeded[] = [];
    const limit = costLimit(config, key.period);
    if (limit !== undefined && row.spent + row.reserved + micros(amount) > micros(limit)) {
      found.push({
        scope: key.scope,
        period: key.period,
        kind: "cost",
        budget_limit: limit,
        budget_remaining: Math.max(0, (micros(limit) - row.spent - row.reserved) / 1e6),
        reset_at: resetAt,
      });
    }
    const executions = config.monthly_execution_limit;
    if (key.period === "month" && executions !== undefined && row.invocations + 1 > executions) {
      found.push({
        scope: key.scope,
        period: "month",
        kind: "executions",
        budget_limit: executions,
        budget_remaining: Math.max(0, executions - row.invocations),
        reset_at: resetAt,
      });
    }
    for (const exceeded of found) {
      if (config.enforcement_mode !== "soft") return { allowed: false, exceeded };
      softExceeded.push(exceeded);
    }
  }
  const day = periodWindow("day", now).start;
  const month = periodWindow("month", now).start;
  return {
    allowed: true,
    reservation: { organizationId: target.organizationId, agentId: target.agentId, amount, day, month },
    degraded: softExceeded.length > 0,
    softExceeded,
  };
}

export class BudgetService {
  constructor(
    private readonly db: Db,
    /** Where threshold crossings are announced to the organization's webhook subscribers. */
    private readonly events?: EventOutbox,
  ) {}

  /**
   * Reserves for several calls in the caller's transaction, with the same outcome as
   * reserving them one after another in order: the batch's increments go to the agents'
   * and organizations' day and month rows in one statement (whose row locks serialise
   * concurrent batches on every replica), each call is then judged against what was
   * there before it, and the increments of refused calls are taken back.
   */
  async reserveAll(tx: DbOrTx, requests: readonly ReserveRequest[]): Promise<ReserveResult[]> {
    const results: Array<ReserveResult | undefined> = requests.map((request) => perCallCapExceeded(request));
    const candidates = requests.flatMap((request, index) =>
      results[index] ? [] : [{ index, request, rows: usageKeys(request) }],
    );
    if (candidates.length === 0) return results as ReserveResult[];

    const increments = sumByKey(
      candidates.flatMap(({ request, rows }) =>
        rows.map((key) => ({ key, amount: request.amount, count: 1 })),
      ),
    );
    const after = await this.applyIncrements(tx, increments, "reserve");
    const running = new Map(
      [...increments].map(([id, increment]): [string, RunningUsage] => {
        const row = after.get(id) as UsageRow;
        return [
          id,
          {
            spent: micros(row.spent),
            reserved: micros(row.reserved) - micros(increment.amount),
            invocations: row.invocations - increment.count,
          },
        ];
      }),
    );

    const refused: typeof candidates = [];
    for (const candidate of candidates) {
      const result = judgeReservation(candidate.request, candidate.rows, running);
      results[candidate.index] = result;
      if (!result.allowed) {
        refused.push(candidate);
        continue;
      }
      for (const key of candidate.rows) {
        const row = running.get(keyId(key)) as RunningUsage;
        row.reserved += micros(candidate.request.amount);
        row.invocations += 1;
      }
    }
    if (refused.length > 0) {
      const takeBack = refused.flatMap(({ request, rows }) =>
        rows.map((key) => ({ key, amount: -request.amount, count: -1 })),
      );
      await this.applyIncrements(tx, sumByKey(takeBack), "adjust");
    }
    return results as ReserveResult[];
  }

  /**
   * Settles or releases several calls' reservations in the caller's transaction, in one
   * statement; a settlement (with a cost) also records the first crossing of each
   * warning and degradation threshold per period. Answers whether a threshold event was
   * queued for delivery.
   */
  async settleAll(tx: DbOrTx, settlements: readonly Settlement[]): Promise<boolean> {
    if (settlements.length === 0) return false;
    const changes = sumByKey(
      settlements.flatMap((settlement) =>
        reservationKeys(settlement.reservation).map((key) => ({
          key,
          amount: -settlement.reservation.amount,
          count: settlement.kind === "release" ? -1 : 0,
          spent: settlement.kind === "settle" ? settlement.cost : 0,
        })),
      ),
    );
    const rows = await this.applyIncrements(tx, changes, "adjust");
    const settledBy = new Map<string, Extract<Settlement, { kind: "settle" }>>();
    for (const settlement of settlements) {
      if (settlement.kind !== "settle") continue;
      for (const key of reservationKeys(settlement.reservation)) {
        if (!settledBy.has(keyId(key))) settledBy.set(keyId(key), settlement);
      }
    }
    let queued = false;
    for (const [id, settlement] of settledBy) {
      const row = rows.get(id);
      if (!row) continue;
      const config =
        row.scope === "agent" ? settlement.target.agentBudget : settlement.target.organizationBudget;
      queued =
        (await this.notifyThresholds(tx, settlement.reservation, row, config, settlement.context)) || queued;
    }
    return queued;
  }

  /** Gives a reservation back when the call never ran. */
  async release(tx: DbOrTx, reservation: Reservation): Promise<void> {
    await this.settleAll(tx, [{ kind: "release", reservation }]);
  }

  /** Day and month usage of one agent or organization against its caps. */
  async usage(scope: BudgetScope, scopeId: string, config: BudgetConfig, now: Date): Promise<PeriodUsage[]> {
    const windows = [periodWindow("day", now), periodWindow("month", now)];
    const rows = await this.db
      .select()
      .from(budgetUsage)
      .where(
        and(
          eq(budgetUsage.scope, scope),
          eq(budgetUsage.scopeId, scopeId),
          inArray(
            budgetUsage.periodStart,
            windows.map((window) => window.start),
          ),
        ),
      );
    return windows.map((window) => {
      const row = rows.find(
        (candidate) => candidate.period === window.period && candidate.periodStart === window.start,
      );
      const spent = row?.spent ?? 0;
      const limit = costLimit(config, window.period) ?? null;
      const ratio = limit === null || limit === 0 ? null : spent / limit;
      const executionLimit = window.period === "month" ? (config.monthly_execution_limit ?? null) : null;
      const invocations = row?.invocations ?? 0;
      return {
        period: window.period,
        period_start: window.start,
        reset_at: window.resetAt.toISOString(),
        cost_used: spent,
        reserved: row?.reserved ?? 0,
        invocations,
        limit,
        remaining: limit === null ? null : Math.max(0, round(limit - spent)),
        execution_limit: executionLimit,
        usage_percentage: ratio === null ? null : round(ratio * 100),
        warning: ratio !== null && ratio >= (config.warning_threshold ?? 0.8),
        degraded: ratio !== null && ratio >= (config.degradation_threshold ?? 0.9),
        limit_reached:
          (limit !== null && spent >= limit) || (executionLimit !== null && invocations >= executionLimit),
      };
    });
  }

  /**
   * Adds each increment to its usage row and answers the rows as they are after it. A
   * reservation creates missing rows; an adjustment only changes existing ones, never
   * below zero. Rows are locked in key order, as every batch does, so two batches cannot
   * deadlock.
   */
  private async applyIncrements(
    tx: DbOrTx,
    increments: Map<string, Increment>,
    kind: "reserve" | "adjust",
  ): Promise<Map<string, UsageRow>> {
    const ordered = [...increments.values()].sort((a, b) => compareKeys(a.key, b.key));
    const values = sql.join(
      ordered.map(
        ({ key, amount, count, spent }) =>
          sql`(${key.organizationId}, ${key.scope}, ${key.scopeId}, ${key.period}, ${key.periodStart}::date, ${amount}::numeric, ${count}::integer, ${spent ?? 0}::numeric)`,
      ),
      sql`, `,
    );
    const result =
      kind === "reserve"
        ? await tx.execute<UsageRow>(sql`
            INSERT INTO budget_usage (organization_id, scope, scope_id, period, period_start, reserved, invocations)
            SELECT organization_id, scope, scope_id, period, period_start, amount, count
              FROM (VALUES ${values}) AS change (organization_id, scope, scope_id, period, period_start, amount, count, spent)
            ON CONFLICT (scope, scope_id, period, period_start) DO UPDATE
              SET reserved = budget_usage.reserved + EXCLUDED.reserved,
                  invocations = budget_usage.invocations + EXCLUDED.invocations
            RETURNING ${USAGE_COLUMNS}`)
        : await tx.execute<UsageRow>(sql`
            WITH change (organization_id, scope, scope_id, period, period_start, amount, count, spent) AS (VALUES ${values}),
            locked AS (
              SELECT usage.scope, usage.scope_id, usage.period, usage.period_start, change.amount, change.count, change.spent
                FROM budget_usage AS usage
                JOIN change USING (scope, scope_id, period, period_start)
               ORDER BY usage.scope, usage.scope_id, usage.period, usage.period_start
                 FOR UPDATE OF usage
            )
            UPDATE budget_usage
               SET reserved = GREATEST(0, budget_usage.reserved + locked.amount),
                   spent = budget_usage.spent + locked.spent,
                   invocations = GREATEST(0, budget_usage.invocations + locked.count)
              FROM locked
             WHERE budget_usage.scope = locked.scope AND budget_usage.scope_id = locked.scope_id
               AND budget_usage.period = locked.period AND budget_usage.period_start = locked.period_start
            RETURNING ${USAGE_COLUMNS}`);
    return new Map(result.rows.map((row) => [keyId(row), row]));
  }

  private async notifyThresholds(
    tx: DbOrTx,
    reservation: Reservation,
    row: UsageRow,
    config: BudgetConfig,
    context: RequestContext,
  ): Promise<boolean> {
    const limit = costLimit(config, row.period);
    let queued = false;
    if (limit === undefined || limit === 0) return queued;
    const ratio = row.spent / limit;
    const crossings = [
      {
        name: "warning",
        threshold: config.warning_threshold ?? 0.8,
        notified: row.warning_notified_at,
        column: "warning_notified_at",
      },
      {
        name: "degradation",
        threshold: config.degradation_threshold ?? 0.9,
        notified: row.degradation_notified_at,
        column: "degradation_notified_at",
      },
    ] as const;
    for (const crossing of crossings) {
      if (crossing.notified || ratio < crossing.threshold) continue;
      const scopeId = row.scope === "agent" ? reservation.agentId : reservation.organizationId;
      const periodStart = row.period === "day" ? reservation.day : reservation.month;
      // The conditional update makes "once per period" hold even when two replicas cross together.
      const claimed = await tx.execute(sql`
        UPDATE budget_usage SET ${sql.raw(crossing.column)} = now()
         WHERE scope = ${row.scope} AND scope_id = ${scopeId} AND period = ${row.period}
           AND period_start = ${periodStart}::date AND ${sql.raw(crossing.column)} IS NULL`);
      if (claimed.rowCount !== 1) continue;
      await recordAudit(tx, context, {
        organizationId: reservation.organizationId,
        action: `budget.${crossing.name}_threshold_crossed`,
        resourceType: row.scope === "agent" ? "external_agent" : "organization",
        resourceId: scopeId,
        details: {
          period: row.period,
          period_start: periodStart,
          spent: row.spent,
          limit,
          threshold: crossing.threshold,
        },
      });
      queued =
        (await this.events?.publish(tx, {
          type: "external_agent.budget.warning",
          organizationId: reservation.organizationId,
          ...(row.scope === "agent" && { externalAgentId: reservation.agentId }),
          data: {
            external_agent_id: row.scope === "agent" ? reservation.agentId : null,
            scope: row.scope,
            level: crossing.name,
            period: row.period,
            spent: row.spent,
            limit,
            threshold: crossing.threshold,
          },
        })) || queued;
    }
    return queued;
  }
}

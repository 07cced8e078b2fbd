import { and, eq, inArray, sql } from "drizzle-orm";
import type { BudgetConfig } from "../../agents/governance-config.js";
import { type RequestContext, recordAudit } from "../../audit/audit.js";
import type { Db, DbOrTx } from "../../db/database.js";
import { budgetUsage } from "../../db/schema.js";
import type { EventOutbox } from "../../delivery/delivery-target.js";
import { type BudgetPeriod, periodWindow } from "./budget-period.js";

/**
 * Reserve-then-settle budgets. A reservation adds the estimated cost to `reserved` of
 * the agent's and the organization's day and month rows in one statement; the row
 * locks it takes serialise concurrent calls on every replica, and a call that would
 * cross a hard cap rolls its own increment back. Settling moves the reservation into
 * `spent` at the actual cost.
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

interface UsageRow extends Record<string, unknown> {
  scope: BudgetScope;
  period: BudgetPeriod;
  spent: number;
  reserved: number;
  invocations: number;
  warning_notified_at: Date | null;
  degradation_notified_at: Date | null;
}

/** The cost reserved before a call: the per-call estimate, or the per-call cap if that is larger. */
export function estimateCost(config: BudgetConfig): number {
  return Math.max(config.cost_per_execution ?? 0, config.max_cost_per_invocation ?? 0);
}

function costLimit(config: BudgetConfig, period: BudgetPeriod): number | undefined {
  return period === "day" ? config.max_daily_cost : config.max_monthly_cost;
}

/** Thrown inside the reservation transaction to undo its increment. */
class ReservationRefused extends Error {
  constructor(readonly exceeded: BudgetExceeded) {
    super("budget exceeded");
  }
}

/** Money as the database keeps it: numeric(20, 6). */
export const roundMoney = (value: number) => Math.round(value * 1e6) / 1e6;
const round = roundMoney;

export class BudgetService {
  constructor(
    private readonly db: Db,
    /** Where threshold crossings are announced to the organization's webhook subscribers. */
    private readonly events?: EventOutbox,
  ) {}

  /**
   * Reserves `amount` against every cap of the agent and its organization. `onReserved`
   * runs in the same transaction, so what it writes commits only with the reservation.
   */
  async reserve(
    target: BudgetTarget,
    amount: number,
    now: Date,
    onReserved?: (tx: DbOrTx) => Promise<void>,
  ): Promise<ReserveResult> {
    const scopes: Array<[BudgetScope, string, BudgetConfig]> = [
      ["agent", target.agentId, target.agentBudget],
      ["organization", target.organizationId, target.organizationBudget],
    ];
    const softExceeded: BudgetExceeded[] = [];
    const judge = (config: BudgetConfig, exceeded: BudgetExceeded) => {
      if (config.enforcement_mode === "soft") softExceeded.push(exceeded);
      else throw new ReservationRefused(exceeded);
    };
    const day = periodWindow("day", now);
    const month = periodWindow("month", now);

    try {
      await this.db.transaction(async (tx) => {
        for (const [scope, , config] of scopes) {
          const cap = config.max_cost_per_invocation;
          if (cap !== undefined && amount > cap) {
            judge(config, {
              scope,
              period: "invocation",
              kind: "cost",
              budget_limit: cap,
              budget_remaining: cap,
              reset_at: null,
            });
          }
        }
        const values = scopes.flatMap(([scope, scopeId]) =>
          [day, month].map(
            (window) =>
              sql`(${target.organizationId}, ${scope}, ${scopeId}, ${window.period}, ${window.start}::date, ${amount}, 1)`,
          ),
        );
        // One statement for all four rows, always in the same order, so concurrent reservations cannot deadlock.
        const result = await tx.execute<UsageRow>(sql`
          INSERT INTO budget_usage (organization_id, scope, scope_id, period, period_start, reserved, invocations)
          VALUES ${sql.join(values, sql`, `)}
          ON CONFLICT (scope, scope_id, period, period_start) DO UPDATE
            SET reserved = budget_usage.reserved + EXCLUDED.reserved,
                invocations = budget_usage.invocations + 1
          RETURNING scope, period, spent, reserved, invocations`);
        for (const row of result.rows) {
          const config = row.scope === "agent" ? target.agentBudget : target.organizationBudget;
          const window = row.period === "day" ? day : month;
          const limit = costLimit(config, row.period);
          if (limit !== undefined && row.spent + row.reserved > limit) {
            judge(config, {
              scope: row.scope,
              period: row.period,
              kind: "cost",
              budget_limit: limit,
              budget_remaining: Math.max(0, round(limit - row.spent - (row.reserved - amount))),
              reset_at: window.resetAt.toISOString(),
            });
          }
          const executions = config.monthly_execution_limit;
          if (row.period === "month" && executions !== undefined && row.invocations > executions) {
            judge(config, {
              scope: row.scope,
              period: "month",
              kind: "executions",
              budget_limit: executions,
              budget_remaining: Math.max(0, executions - (row.invocations - 1)),
              reset_at: window.resetAt.toISOString(),
            });
          }
        }
        await onReserved?.(tx);
      });
    } catch (error) {
      if (error instanceof ReservationRefused) return { allowed: false, exceeded: error.exceeded };
      throw error;
    }
    return {
      allowed: true,
      reservation: {
        organizationId: target.organizationId,
        agentId: target.agentId,
        amount,
        day: day.start,
        month: month.start,
      },
      degraded: softExceeded.length > 0,
      softExceeded,
    };
  }

  /**
   * Moves a reservation into spend at `actualCost`, inside the caller's transaction,
   * and records the first crossing of each warning and degradation threshold per period.
   */
  async settle(
    tx: DbOrTx,
    reservation: Reservation,
    actualCost: number,
    target: BudgetTarget,
    context: RequestContext,
  ): Promise<void> {
    const rows = await this.adjust(tx, reservation, {
      reserved: -reservation.amount,
      spent: actualCost,
      invocations: 0,
    });
    for (const row of rows) {
      const config = row.scope === "agent" ? target.agentBudget : target.organizationBudget;
      await this.notifyThresholds(tx, reservation, row, config, context);
    }
  }

  /** Gives a reservation back when the call never ran. */
  async release(tx: DbOrTx, reservation: Reservation): Promise<void> {
    await this.adjust(tx, reservation, { reserved: -reservation.amount, spent: 0, invocations: -1 });
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

  private async adjust(
    tx: DbOrTx,
    reservation: Reservation,
    change: { reserved: number; spent: number; invocations: number },
  ): Promise<UsageRow[]> {
    // Lock the rows in the same order as a reservation does (scope, scope_id, period) before
    // updating them: an UPDATE alone locks in scan order, and two calls could deadlock.
    const result = await tx.execute<UsageRow>(sql`
      WITH locked AS (
        SELECT scope, scope_id, period, period_start FROM budget_usage
         WHERE (scope, scope_id) IN (('agent', ${reservation.agentId}), ('organization', ${reservation.organizationId}))
           AND ((period = 'day' AND period_start = ${reservation.day}::date)
             OR (period = 'month' AND period_start = ${reservation.month}::date))
         ORDER BY scope, scope_id, period, period_start
         FOR UPDATE
      )
      UPDATE budget_usage AS usage
         SET reserved = GREATEST(0, usage.reserved + ${change.reserved}),
             spent = usage.spent + ${change.spent},
             invocations = GREATEST(0, usage.invocations + ${change.invocations})
        FROM locked
       WHERE usage.scope = locked.scope AND usage.scope_id = locked.scope_id
         AND usage.period = locked.period AND usage.period_start = locked.period_start
      RETURNING usage.scope, usage.period, usage.spent, usage.reserved, usage.invocations,
                usage.warning_notified_at, usage.degradation_notified_at`);
    return result.rows;
  }

  private async notifyThresholds(
    tx: DbOrTx,
    reservation: Reservation,
    row: UsageRow,
    config: BudgetConfig,
    context: RequestContext,
  ): Promise<void> {
    const limit = costLimit(config, row.period);
    if (limit === undefined || limit === 0) return;
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
      await this.events?.publish(tx, {
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
      });
    }
  }
}

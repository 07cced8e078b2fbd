import { and, asc, eq, exists, inArray, lt, ne, or } from "drizzle-orm";
import type { Logger } from "pino";
import type { Db } from "../db/database.js";
import type { DutyLeases } from "../db/duty-leases.js";
import { literalIn } from "../db/literal-in.js";
import { PeriodicDuty } from "../db/periodic-duty.js";
import { approvals, externalAgents, type InvocationRow, invocations } from "../db/schema.js";
import { periodWindow } from "../governance/budget/budget-period.js";
import type { InvocationJournal } from "./invocation-journal.js";

const DUTY = "abandoned call sweep";
/** Calls closed per pass; the next pass takes the rest. */
const BATCH = 100;
export const ABANDONED_MESSAGE =
  "abandoned: the Steward process handling this call stopped before it finished";

export interface AbandonedCallSweeperOptions {
  db: Db;
  journal: InvocationJournal;
  leases: DutyLeases;
  logger: Logger;
  /** A call still running this long after it began has no process left to finish it. */
  abandonAfterMs: number;
  intervalMs: number;
}

/**
 * Closes calls whose process died mid-call (killed, or cut at the shutdown deadline):
 * a call still `running` long after any agent timeout could have ended it — or still
 * held for an approval decided as long ago, which the deciding process went on to run or
 * close — is recorded as an error, its budget reservation given back and its
 * Idempotency-Key freed, and it takes its place in the lineage chain like any finished
 * call. One replica does this at a time, through its lease.
 */
export class AbandonedCallSweeper {
  private readonly duty: PeriodicDuty;

  constructor(private readonly options: AbandonedCallSweeperOptions) {
    this.duty = new PeriodicDuty({ ...options, duty: DUTY, pass: () => this.sweep() });
  }

  start(): void {
    this.duty.start();
  }

  /** Sweeps nothing more and waits for a pass under way, until `deadline` at most. */
  stop(deadline?: AbortSignal): Promise<void> {
    return this.duty.stop(deadline);
  }

  /** Closes the abandoned calls found now; answers how many. */
  async sweep(now = new Date()): Promise<number> {
    const { db, journal, logger } = this.options;
    const cutoff = new Date(now.getTime() - this.options.abandonAfterMs);
    const abandoned = await db
      .select()
      .from(invocations)
      .where(
        or(
          and(literalIn(invocations.status, ["running"]), lt(invocations.createdAt, cutoff)),
          and(
            literalIn(invocations.status, ["pending_approval"]),
            exists(
              db
                .select({ decided: approvals.id })
                .from(approvals)
                .where(
                  and(
                    eq(approvals.invocationId, invocations.id),
                    ne(approvals.status, "pending"),
                    lt(approvals.decidedAt, cutoff),
                  ),
                ),
            ),
          ),
        ),
      )
      .orderBy(asc(invocations.createdAt))
      .limit(BATCH);
    if (abandoned.length === 0) return 0;
    const agents = new Map(
      (
        await db
          .select()
          .from(externalAgents)
          .where(inArray(externalAgents.id, [...new Set(abandoned.map((row) => row.externalAgentId))]))
      ).map((agent) => [agent.id, agent]),
    );
    await Promise.all(
      abandoned.map(async (row) => {
        const agent = agents.get(row.externalAgentId);
        // Scoped like every read: an agent of another organization never closes this call.
        if (!agent || agent.organizationId !== row.organizationId) return;
        await journal.close({ row: closed(row, now), settlement: release(row), agent });
      }),
    );
    logger.warn({ count: abandoned.length }, "closed calls abandoned by a stopped process");
    return abandoned.length;
  }
}

function closed(row: InvocationRow, now: Date): InvocationRow {
  return { ...row, status: "error", errorMessage: ABANDONED_MESSAGE, completedAt: now, idempotencyKey: null };
}

function release(row: InvocationRow) {
  if (row.reservedCost <= 0) return undefined;
  return {
    kind: "release" as const,
    reservation: {
      organizationId: row.organizationId,
      agentId: row.externalAgentId,
      amount: row.reservedCost,
      day: periodWindow("day", row.createdAt).start,
      month: periodWindow("month", row.createdAt).start,
    },
  };
}

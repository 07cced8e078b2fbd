import { and, eq } from "drizzle-orm";
import type { Db, DbOrTx } from "../db/database.js";
import { isUniqueViolation } from "../db/errors.js";
import { type InvocationRow, invocations } from "../db/schema.js";
import { appendToChain } from "../lineage/lineage-chain.js";

export type NewInvocation = typeof invocations.$inferInsert;

/** The columns an invocation's outcome sets when it becomes final. */
export type InvocationOutcome = Pick<
  NewInvocation,
  | "status"
  | "responseStatus"
  | "responseBody"
  | "errorMessage"
  | "durationMs"
  | "costUsd"
  | "degraded"
  | "degradedReasons"
  | "governance"
  | "policyIds"
  | "estimatedCost"
> & {
  /** Governance refusals give the key back, so a retry after the limit resets is a new call. */
  releaseIdempotencyKey?: boolean;
};

/** Writes of invocation rows; every final write also places the row in the lineage chain. */
export class InvocationStore {
  constructor(private readonly db: Db) {}

  /**
   * Records a call as it starts. With an idempotency key already taken, answers the
   * row that holds it instead.
   */
  async start(values: NewInvocation): Promise<{ row: InvocationRow; duplicate: boolean }> {
    try {
      const [row] = await this.db.insert(invocations).values(values).returning();
      return { row: row as InvocationRow, duplicate: false };
    } catch (error) {
      if (values.idempotencyKey && isUniqueViolation(error, "invocations_idempotency_key")) {
        const existing = await this.findByIdempotencyKey(values.organizationId, values.idempotencyKey);
        if (existing) return { row: existing, duplicate: true };
      }
      throw error;
    }
  }

  async findByIdempotencyKey(organizationId: string, key: string): Promise<InvocationRow | undefined> {
    const [row] = await this.db
      .select()
      .from(invocations)
      .where(and(eq(invocations.organizationId, organizationId), eq(invocations.idempotencyKey, key)));
    return row;
  }

  /**
   * Makes an invocation final: writes its outcome, runs `alongside` (budget settlement)
   * and appends it to the chain, all in one transaction — so a response never refers
   * to a record or a settlement that is not there.
   */
  async finish(
    id: string,
    organizationId: string,
    outcome: InvocationOutcome,
    alongside?: (tx: DbOrTx) => Promise<void>,
  ): Promise<InvocationRow> {
    const { releaseIdempotencyKey, ...columns } = outcome;
    return this.db.transaction(async (tx) => {
      await tx
        .update(invocations)
        .set({
          ...columns,
          completedAt: new Date(),
          ...(releaseIdempotencyKey ? { idempotencyKey: null } : {}),
        })
        .where(eq(invocations.id, id));
      await alongside?.(tx);
      return appendToChain(tx, id, organizationId);
    });
  }

  /** Parks a call that waits for approval; it joins the chain when it becomes final. */
  async hold(
    id: string,
    columns: Pick<NewInvocation, "status" | "governance" | "degraded" | "degradedReasons" | "policyIds">,
  ): Promise<InvocationRow> {
    const [row] = await this.db.update(invocations).set(columns).where(eq(invocations.id, id)).returning();
    return row as InvocationRow;
  }

  /** Marks the reservation a call holds, in the reservation's own transaction. */
  async setReservedCost(tx: DbOrTx, id: string, amount: number): Promise<void> {
    await tx
      .update(invocations)
      .set({ reservedCost: amount, estimatedCost: amount })
      .where(eq(invocations.id, id));
  }

  async findParentBySpan(organizationId: string, traceId: string, spanId: string): Promise<string | null> {
    const [row] = await this.db
      .select({ id: invocations.id })
      .from(invocations)
      .where(
        and(
          eq(invocations.organizationId, organizationId),
          eq(invocations.traceId, traceId),
          eq(invocations.spanId, spanId),
        ),
      )
      .limit(1);
    return row?.id ?? null;
  }
}

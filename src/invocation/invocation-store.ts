import { and, eq, getTableColumns, type SQL, sql } from "drizzle-orm";
import type { PgColumn } from "drizzle-orm/pg-core";
import type { Db, DbOrTx } from "../db/database.js";
import { isUniqueViolation } from "../db/errors.js";
import { type InvocationRow, invocations } from "../db/schema.js";
import { NotFoundError } from "../errors.js";
import { chainHeadUpdate, placeInChain } from "../lineage/lineage-chain.js";
import { REDACTED_VALUES } from "../lineage/lineage-hash.js";

/** What an invocation's outcome sets when it becomes final: its status, and whatever else it learned. */
export type InvocationOutcome = Pick<InvocationRow, "status"> &
  Partial<
    Pick<
      InvocationRow,
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
    >
  > & {
    /** Governance refusals give the key back, so a retry after the limit resets is a new call. */
    releaseIdempotencyKey?: boolean;
  };

const COLUMNS = Object.entries(getTableColumns(invocations)) as Array<[keyof InvocationRow, PgColumn]>;
const COLUMN_OF = new Map(COLUMNS);

/**
 * One bound parameter as the driver must send it: jsonb as JSON text (a JS array would
 * become a SQL array), and arrays as one value (`sql` would otherwise expand them to a list).
 */
function encode(column: PgColumn, value: unknown): ReturnType<typeof sql.param> {
  return sql.param(value !== null && column.columnType === "PgJsonb" ? JSON.stringify(value) : value);
}

function assignments(row: InvocationRow, keys: Array<keyof InvocationRow>): SQL {
  return sql.join(
    keys.map((key) => {
      const column = COLUMN_OF.get(key) as PgColumn;
      return sql`${sql.identifier(column.name)} = ${encode(column, row[key])}`;
    }),
    sql`, `,
  );
}

/** Set when a call becomes final; identity and request body were written at the start. */
const FINAL_COLUMNS: Array<keyof InvocationRow> = [
  "status",
  "idempotencyKey",
  "responseStatus",
  "durationMs",
  "estimatedCost",
  "costUsd",
  "degraded",
  "degradedReasons",
  "governance",
  "policyIds",
  "completedAt",
  "chainSeq",
  "prevHash",
  "recordHash",
  "identityHash",
  "bodyHash",
  "webhookDeliveryStatus",
];

/**
 * Writes of invocation rows. The store keeps each call's row in memory and writes it
 * with plain statements: this is the invoke hot path, and the in-memory row is also
 * what the lineage hash is computed from.
 */
export class InvocationStore {
  constructor(private readonly db: Db) {}

  /**
   * Records a call as it starts. With an idempotency key already taken, answers the
   * row that holds it instead.
   */
  async start(row: InvocationRow): Promise<{ row: InvocationRow; duplicate: boolean }> {
    const names = sql.join(
      COLUMNS.map(([, column]) => sql.identifier(column.name)),
      sql`, `,
    );
    const values = sql.join(
      COLUMNS.map(([key, column]) => sql`${encode(column, row[key])}`),
      sql`, `,
    );
    try {
      await this.db.execute(sql`INSERT INTO invocations (${names}) VALUES (${values})`);
      return { row, duplicate: false };
    } catch (error) {
      if (row.idempotencyKey && isUniqueViolation(error, "invocations_idempotency_key")) {
        const existing = await this.findByIdempotencyKey(row.organizationId, row.idempotencyKey);
        if (existing) return { row: existing, duplicate: true };
      }
      throw error;
    }
  }

  async get(organizationId: string, id: string): Promise<InvocationRow> {
    const [row] = await this.db
      .select()
      .from(invocations)
      .where(and(eq(invocations.organizationId, organizationId), eq(invocations.id, id)));
    if (!row) throw new NotFoundError("invocation", id);
    return row;
  }

  async findByIdempotencyKey(organizationId: string, key: string): Promise<InvocationRow | undefined> {
    const [row] = await this.db
      .select()
      .from(invocations)
      .where(and(eq(invocations.organizationId, organizationId), eq(invocations.idempotencyKey, key)));
    return row;
  }

  /**
   * Makes an invocation final: runs `alongside` (budget settlement, queued deliveries),
   * takes the next place in the lineage chain and writes the outcome, all in one
   * transaction — so a response never refers to a record, a settlement or a delivery
   * that is not there.
   */
  async finish(
    running: InvocationRow,
    outcome: InvocationOutcome,
    alongside?: (tx: DbOrTx, final: InvocationRow) => Promise<Partial<InvocationRow> | undefined>,
  ): Promise<InvocationRow> {
    const { releaseIdempotencyKey, ...columns } = outcome;
    const final: InvocationRow = {
      ...running,
      ...columns,
      completedAt: new Date(),
      idempotencyKey: releaseIdempotencyKey ? null : running.idempotencyKey,
    };
    return this.db.transaction(async (tx) => {
      // What `alongside` adds (delivery state) lies outside the hashed content. It runs
      // first: placing takes the organization's chain lock, held until commit.
      const extra = await alongside?.(tx, final);
      const placed = { ...(await placeInChain(tx, final)), ...extra };
      // An erasure (GDPR) that landed while the call was in flight wins over the answer
      // written now; the component hashes, taken from the content, keep the chain sound.
      const written = await tx.execute<{ redacted: boolean }>(sql`
        WITH head AS (${chainHeadUpdate(placed)})
        UPDATE invocations
           SET ${assignments(placed, FINAL_COLUMNS)},
               response_body = CASE WHEN redacted_at IS NULL THEN ${encode(
                 COLUMN_OF.get("responseBody") as PgColumn,
                 placed.responseBody,
               )}::jsonb END,
               error_message = CASE WHEN redacted_at IS NULL THEN ${placed.errorMessage}::text END
         WHERE id = ${placed.id}
        RETURNING redacted_at IS NOT NULL AS redacted`);
      // The answer of an erased call is not kept, so it is not handed on either.
      return written.rows[0]?.redacted ? { ...placed, ...REDACTED_VALUES } : placed;
    });
  }

  /**
   * Drops a running call that turned out to repeat one already waiting for approval
   * (it never reached the agent nor the chain), running `alongside` (releasing its
   * reservation) in the same transaction; answers the waiting call.
   */
  async discard(
    running: InvocationRow,
    pendingId: string,
    alongside: (tx: DbOrTx) => Promise<void>,
  ): Promise<InvocationRow | undefined> {
    await this.db.transaction(async (tx) => {
      await alongside(tx);
      await tx.execute(sql`DELETE FROM invocations WHERE id = ${running.id} AND status = 'running'`);
    });
    const [pending] = await this.db.select().from(invocations).where(eq(invocations.id, pendingId));
    return pending;
  }

  /** Parks a call that waits for approval; it joins the chain when it becomes final. */
  async hold(
    running: InvocationRow,
    columns: Pick<InvocationRow, "status" | "governance" | "degraded" | "degradedReasons" | "policyIds">,
  ): Promise<InvocationRow> {
    const held = { ...running, ...columns };
    await this.db.execute(
      sql`UPDATE invocations SET ${assignments(held, ["status", "governance", "degraded", "degradedReasons", "policyIds"])} WHERE id = ${held.id}`,
    );
    return held;
  }

  /** Marks the reservation a call holds, in the reservation's own transaction. */
  async setReservedCost(tx: DbOrTx, id: string, amount: number): Promise<void> {
    await tx.execute(
      sql`UPDATE invocations SET reserved_cost = ${amount}, estimated_cost = ${amount} WHERE id = ${id}`,
    );
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

import { and, eq, getTableColumns, or, type SQL, sql } from "drizzle-orm";
import type { PgColumn } from "drizzle-orm/pg-core";
import type { Db, DbOrTx } from "../db/database.js";
import { type InvocationRow, invocations } from "../db/schema.js";
import { NotFoundError } from "../errors.js";

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
  "reservedCost",
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
 * Rows as one JSON parameter keyed by column name, for `json_populate_recordset`: a
 * batch of calls is one bound value the database unpacks, rather than thousands of
 * parameters to bind one by one.
 */
function recordset(rows: readonly InvocationRow[]): SQL {
  const records = rows.map((row) => {
    const record: Record<string, unknown> = {};
    for (const [key, column] of COLUMNS) record[column.name] = row[key];
    return record;
  });
  return sql`json_populate_recordset(NULL::invocations, ${JSON.stringify(records)}::json)`;
}

/** Rows are written in id order, as every batch does, so two writers cannot deadlock on them. */
const byId = (a: InvocationRow, b: InvocationRow) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * Reads and writes of invocation rows. Calls are written twice — when their budget is
 * reserved and when they become final — in batches (see InvocationJournal): this is the
 * invoke hot path, and the in-memory row is also what the lineage hash is computed from.
 */
export class InvocationStore {
  constructor(private readonly db: Db) {}

  /**
   * Records running calls; a call whose idempotency key another call already holds is
   * left out. Answers the ids that were recorded.
   */
  async insertRunning(tx: DbOrTx, rows: readonly InvocationRow[]): Promise<Set<string>> {
    const inserted = await tx.execute<{ id: string }>(sql`
      INSERT INTO invocations SELECT * FROM ${recordset(rows)}
      ON CONFLICT (organization_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
      RETURNING id`);
    return new Set(inserted.rows.map((row) => row.id));
  }

  /**
   * Writes final calls placed in the lineage chain, with the chain heads' move: a call
   * recorded while running (or held for approval) gets its outcome, any other is
   * recorded whole. A call some other closer made final already is left as it is and
   * missing from `written`. `erased` holds the calls erased (GDPR) while they were in
   * flight: that erasure wins over the answer written now, and the component hashes,
   * taken from the content, keep the chain sound.
   */
  async writeFinal(
    tx: DbOrTx,
    placed: readonly InvocationRow[],
    chainHeads: SQL,
  ): Promise<{ written: Set<string>; erased: Set<string> }> {
    const result = await tx.execute<{ id: string; redacted: boolean }>(sql`
      WITH head AS (${chainHeads})
      INSERT INTO invocations SELECT * FROM ${recordset([...placed].sort(byId))}
      ON CONFLICT (id) DO UPDATE
         SET ${sql.join(
           FINAL_COLUMNS.map((key) => {
             const name = sql.identifier((COLUMN_OF.get(key) as PgColumn).name);
             return sql`${name} = EXCLUDED.${name}`;
           }),
           sql`, `,
         )},
             response_body = CASE WHEN invocations.redacted_at IS NULL THEN EXCLUDED.response_body END,
             error_message = CASE WHEN invocations.redacted_at IS NULL THEN EXCLUDED.error_message END
       WHERE invocations.status IN ('running', 'pending_approval')
      RETURNING id, redacted_at IS NOT NULL AS redacted`);
    return {
      written: new Set(result.rows.map((row) => row.id)),
      erased: new Set(result.rows.filter((row) => row.redacted).map((row) => row.id)),
    };
  }

  async get(organizationId: string, id: string): Promise<InvocationRow> {
    const [row] = await this.db
      .select()
      .from(invocations)
      .where(and(eq(invocations.organizationId, organizationId), eq(invocations.id, id)));
    if (!row) throw new NotFoundError("invocation", id);
    return row;
  }

  /** The rows holding the idempotency keys of `rows`, by `<organization id>/<key>`. */
  async findIdempotencyHolders(
    tx: DbOrTx,
    rows: readonly InvocationRow[],
  ): Promise<Map<string, InvocationRow>> {
    if (rows.length === 0) return new Map();
    const holders = await tx
      .select()
      .from(invocations)
      .where(
        or(
          ...rows.map((row) =>
            and(
              eq(invocations.organizationId, row.organizationId),
              eq(invocations.idempotencyKey, row.idempotencyKey as string),
            ),
          ),
        ),
      );
    return new Map(holders.map((holder) => [`${holder.organizationId}/${holder.idempotencyKey}`, holder]));
  }

  async findByIdempotencyKey(organizationId: string, key: string): Promise<InvocationRow | undefined> {
    const [row] = await this.db
      .select()
      .from(invocations)
      .where(and(eq(invocations.organizationId, organizationId), eq(invocations.idempotencyKey, key)));
    return row;
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

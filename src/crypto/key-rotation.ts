import { drizzle } from "drizzle-orm/node-postgres";
import type pg from "pg";
import type { SealedSecret } from "../agents/credentials.js";
import { type RequestContext, recordAudit } from "../audit/audit.js";
import type { DbOrTx } from "../db/database.js";
import { SEALED_TABLES, type SealedTable } from "./sealed-columns.js";
import { type SecretBox, SecretDecryptionError } from "./secret-box.js";

/**
 * Re-sealing of every stored secret with the current key (`steward keys rotate`).
 *
 * Rows are read in primary-key order, a batch at a time, without locks; each value not
 * sealed with the current key is opened with whichever configured key sealed it and
 * sealed again under the same associated data. A batch's rows are written in one
 * transaction, each with a compare-and-set on the column values it read: a row that an
 * API call (or another run of this command) changed in the meantime is not written over
 * but read again and re-planned. Values already on the current key are left as they are,
 * so a second run writes nothing. Plaintexts exist only in memory, for one value at a time.
 * Each row written gets an audit event in its organization, in the same transaction,
 * naming the key and the columns (never a value).
 */

export interface RotationFailure {
  table: string;
  id: string;
  /** Column and JSON path of the value (`auth_config.client_secret`): a name, never the value. */
  field: string;
  reason: string;
}

/** What re-sealing one row takes, worked out in memory. */
export interface RowPlan {
  /** New values of the columns that change, by column name. */
  changes: Record<string, unknown>;
  /** Values re-sealed with the current key. */
  resealed: number;
  /** Values that were sealed with the current key already. */
  current: number;
  failures: RotationFailure[];
}

export interface TableResult {
  table: string;
  /** Rows read. */
  rows: number;
  /** Rows written (or, in a dry run, that would be). */
  changedRows: number;
  resealed: number;
  current: number;
  failures: RotationFailure[];
}

export interface RotationResult {
  keyId: string;
  dryRun: boolean;
  tables: TableResult[];
}

export interface RotationOptions {
  /** Count what would change; write nothing. */
  dryRun?: boolean;
  /** Rows read, and written in one transaction, at a time. */
  batchSize?: number;
  /** Called after each batch with the table's totals so far. */
  onProgress?: (progress: Readonly<TableResult>) => void;
}

const DEFAULT_BATCH_SIZE = 100;
/** Reads of a row that keeps changing under the compare-and-set before it is reported instead. */
const MAX_ATTEMPTS = 5;

type Row = Record<string, unknown>;

/** The key id a sealed value names (`v1.<key id>.…`). */
function keyIdOfSealed(sealed: string): string | undefined {
  return sealed.split(".")[1];
}

function sealedAt(value: unknown, keys: readonly string[]): SealedSecret {
  let node = value;
  for (const key of keys) node = (node as Row)[key];
  return node as SealedSecret;
}

/** One row's secrets re-sealed with the current key, in memory: nothing is written. */
export function planRow(table: SealedTable, row: Row, box: SecretBox): RowPlan {
  const id = String(row[table.idColumn]);
  const plan: RowPlan = { changes: {}, resealed: 0, current: 0, failures: [] };
  for (const column of table.columns) {
    const stored = row[column.name];
    let updated: unknown;
    for (const slot of column.slots(id, stored)) {
      const field = [column.name, ...slot.keys].join(".");
      if ("problem" in slot) {
        plan.failures.push({ table: table.name, id, field, reason: slot.problem });
        continue;
      }
      const sealed = sealedAt(stored, slot.keys).$sealed;
      let plaintext: string;
      try {
        plaintext = box.open(sealed, slot.context);
      } catch (error) {
        // The message names the key id or says authentication failed; never the value.
        if (!(error instanceof SecretDecryptionError)) throw error;
        plan.failures.push({ table: table.name, id, field, reason: error.message });
        continue;
      }
      if (keyIdOfSealed(sealed) === box.currentKeyId) {
        plan.current += 1;
        continue;
      }
      updated ??= structuredClone(stored);
      sealedAt(updated, slot.keys).$sealed = box.seal(plaintext, slot.context);
      plan.resealed += 1;
    }
    if (updated !== undefined) plan.changes[column.name] = updated;
  }
  return plan;
}

function identifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function selectColumns(table: SealedTable): string {
  return [table.idColumn, "organization_id", ...table.columns.map((column) => column.name)]
    .map(identifier)
    .join(", ");
}

const ROTATION: RequestContext = { actor: { type: "system", id: "steward keys rotate" } };

/** The audit event of one row re-sealed: which key, which columns, how many values. */
function auditResealed(tx: DbOrTx, table: SealedTable, row: Row, plan: RowPlan, keyId: string) {
  return recordAudit(tx, ROTATION, {
    organizationId: String(row.organization_id),
    action: "secrets.reencrypted",
    resourceType: table.resourceType,
    resourceId: String(row[table.idColumn]),
    details: { key_id: keyId, columns: Object.keys(plan.changes), values: plan.resealed },
  });
}

/**
 * Writes the changed columns of one row if each still holds the value the plan was made
 * from; false when someone changed one in between.
 */
async function compareAndSet(
  client: pg.PoolClient,
  table: SealedTable,
  row: Row,
  changes: Record<string, unknown>,
): Promise<boolean> {
  const columns = Object.keys(changes);
  const values: unknown[] = [row[table.idColumn]];
  const assignments = columns.map((column) => {
    values.push(JSON.stringify(changes[column]));
    return `${identifier(column)} = $${values.length}::jsonb`;
  });
  const checks = columns.map((column) => {
    values.push(JSON.stringify(row[column]));
    return `${identifier(column)} = $${values.length}::jsonb`;
  });
  const result = await client.query(
    `UPDATE ${identifier(table.name)} SET ${assignments.join(", ")} WHERE ${identifier(table.idColumn)} = $1 AND ${checks.join(" AND ")}`,
    values,
  );
  return result.rowCount === 1;
}

function account(result: TableResult, plan: RowPlan): void {
  result.resealed += plan.resealed;
  result.current += plan.current;
  result.failures.push(...plan.failures);
  if (plan.resealed > 0) result.changedRows += 1;
}

/**
 * Writes a batch's changed rows, each with its audit event, in one transaction; returns
 * the rows that changed under it.
 */
async function writeBatch(
  pool: pg.Pool,
  table: SealedTable,
  writes: Array<{ row: Row; plan: RowPlan }>,
  keyId: string,
): Promise<Row[]> {
  const conflicts: Row[] = [];
  const client = await pool.connect();
  const audit = drizzle(client);
  let broken: Error | undefined;
  try {
    await client.query("BEGIN");
    for (const { row, plan } of writes) {
      if (await compareAndSet(client, table, row, plan.changes)) {
        await auditResealed(audit, table, row, plan, keyId);
      } else {
        conflicts.push(row);
      }
    }
    await client.query("COMMIT");
    return conflicts;
  } catch (error) {
    await client.query("ROLLBACK").catch((rollbackError: Error) => {
      broken = rollbackError;
    });
    throw error;
  } finally {
    client.release(broken);
  }
}

/** Reads a row again and re-plans it until its compare-and-set holds, or reports it. */
async function retryRow(pool: pg.Pool, table: SealedTable, id: unknown, box: SecretBox): Promise<RowPlan> {
  const select = `SELECT ${selectColumns(table)} FROM ${identifier(table.name)} WHERE ${identifier(table.idColumn)} = $1`;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const { rows } = await pool.query<Row>(select, [id]);
    const row = rows[0];
    // Deleted in the meantime: nothing left to re-seal.
    if (!row) return { changes: {}, resealed: 0, current: 0, failures: [] };
    const plan = planRow(table, row, box);
    if (plan.resealed === 0) return plan;
    const conflicts = await writeBatch(pool, table, [{ row, plan }], box.currentKeyId);
    if (conflicts.length === 0) return plan;
  }
  return {
    changes: {},
    resealed: 0,
    current: 0,
    failures: [
      {
        table: table.name,
        id: String(id),
        field: table.columns.map((column) => column.name).join(", "),
        reason: `changed by someone else on each of ${MAX_ATTEMPTS} attempts; run the command again`,
      },
    ],
  };
}

async function rotateTable(
  pool: pg.Pool,
  table: SealedTable,
  box: SecretBox,
  options: RotationOptions,
): Promise<TableResult> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const result: TableResult = {
    table: table.name,
    rows: 0,
    changedRows: 0,
    resealed: 0,
    current: 0,
    failures: [],
  };
  const id = identifier(table.idColumn);
  const select = `SELECT ${selectColumns(table)} FROM ${identifier(table.name)} WHERE ${id} > $1 ORDER BY ${id} LIMIT $2`;
  let after = "";
  for (;;) {
    const { rows } = await pool.query<Row>(select, [after, batchSize]);
    if (rows.length === 0) break;
    after = String(rows[rows.length - 1]?.[table.idColumn]);
    result.rows += rows.length;
    const writes: Array<{ row: Row; plan: RowPlan }> = [];
    for (const row of rows) {
      const plan = planRow(table, row, box);
      if (plan.resealed > 0 && !options.dryRun) writes.push({ row, plan });
      else account(result, plan);
    }
    const conflicts = writes.length > 0 ? await writeBatch(pool, table, writes, box.currentKeyId) : [];
    for (const { row, plan } of writes) if (!conflicts.includes(row)) account(result, plan);
    for (const row of conflicts) account(result, await retryRow(pool, table, row[table.idColumn], box));
    options.onProgress?.(result);
    if (rows.length < batchSize) break;
  }
  return result;
}

/** Re-seals every stored secret not sealed with `box`'s current key (see the top of this file). */
export async function rotateStoredSecrets(
  pool: pg.Pool,
  box: SecretBox,
  options: RotationOptions = {},
): Promise<RotationResult> {
  const tables: TableResult[] = [];
  for (const table of SEALED_TABLES) tables.push(await rotateTable(pool, table, box, options));
  return { keyId: box.currentKeyId, dryRun: options.dryRun ?? false, tables };
}

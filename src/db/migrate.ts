import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type pg from "pg";

/**
 * Applies migrations/*.sql in file-name order, each in its own transaction, recording
 * each in `steward_migrations`. scripts/run-migrations.sh applies the same files with
 * psql under the same advisory lock, so either can run first and replicas starting
 * together never apply a file twice.
 */

export const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations/", import.meta.url));

export interface MigrationResult {
  applied: string[];
  alreadyApplied: number;
}

export async function listMigrations(dir = MIGRATIONS_DIR): Promise<string[]> {
  return (await readdir(dir)).filter((file) => file.endsWith(".sql")).sort();
}

export async function runMigrations(
  pool: pg.Pool,
  schema: string,
  dir = MIGRATIONS_DIR,
): Promise<MigrationResult> {
  const client = await pool.connect();
  const lockKey = `steward_migrations:${schema}`;
  // Each step is one transaction holding a transaction-level lock (never a session lock, which
  // PgBouncer in transaction mode could leave held on a server connection someone else gets).
  const locked = async <T>(step: () => Promise<T>): Promise<T> => {
    await client.query("BEGIN");
    try {
      await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [lockKey]);
      await client.query(`SET LOCAL search_path TO "${schema}"`);
      const result = await step();
      await client.query("COMMIT");
      return result;
    } catch (error) {
      await client.query("ROLLBACK");
      throw error;
    }
  };
  const applied: string[] = [];
  try {
    // Under the lock: two first starts racing on CREATE SCHEMA would collide. Created only
    // when missing: a runtime role that may not create anything (the migrations ran as
    // another role) is refused CREATE SCHEMA even with IF NOT EXISTS.
    await locked(async () => {
      const { rows } = await client.query<{ schema: boolean; ledger: boolean }>(
        "SELECT to_regnamespace($1) IS NOT NULL AS schema, to_regclass($2) IS NOT NULL AS ledger",
        [`"${schema}"`, `"${schema}".steward_migrations`],
      );
      if (!rows[0]?.schema) await client.query(`CREATE SCHEMA "${schema}"`);
      if (!rows[0]?.ledger) {
        await client.query(
          `CREATE TABLE "${schema}".steward_migrations (
             version text PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
           )`,
        );
      }
    });
    const files = await listMigrations(dir);
    for (const file of files) {
      const version = file.replace(/\.sql$/, "");
      const sql = await readFile(`${dir}/${file}`, "utf8");
      const ran = await locked(async () => {
        // Read under the lock: another replica may have applied it a moment ago.
        const { rowCount } = await client.query("SELECT 1 FROM steward_migrations WHERE version = $1", [
          version,
        ]);
        if (rowCount) return false;
        try {
          await client.query(sql);
        } catch (error) {
          throw new Error(`migration ${file} failed: ${(error as Error).message}`, { cause: error });
        }
        await client.query("INSERT INTO steward_migrations (version) VALUES ($1)", [version]);
        return true;
      });
      if (ran) applied.push(version);
    }
    return { applied, alreadyApplied: files.length - applied.length };
  } finally {
    client.release();
  }
}

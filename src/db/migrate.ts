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
  const applied: string[] = [];
  try {
    // Lock before anything else: two first starts racing on CREATE SCHEMA would collide.
    await client.query("SELECT pg_advisory_lock(hashtext($1))", [`steward_migrations:${schema}`]);
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      await client.query(`SET search_path TO "${schema}"`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS steward_migrations (
           version text PRIMARY KEY,
           applied_at timestamptz NOT NULL DEFAULT now()
         )`,
      );
      const { rows } = await client.query<{ version: string }>("SELECT version FROM steward_migrations");
      const done = new Set(rows.map((row) => row.version));
      const files = await listMigrations(dir);
      for (const file of files) {
        const version = file.replace(/\.sql$/, "");
        if (done.has(version)) continue;
        const sql = await readFile(`${dir}/${file}`, "utf8");
        await client.query("BEGIN");
        try {
          await client.query(sql);
          await client.query("INSERT INTO steward_migrations (version) VALUES ($1)", [version]);
          await client.query("COMMIT");
        } catch (error) {
          await client.query("ROLLBACK");
          throw new Error(`migration ${file} failed: ${(error as Error).message}`, { cause: error });
        }
        applied.push(version);
      }
      return { applied, alreadyApplied: files.length - applied.length };
    } finally {
      await client.query("SELECT pg_advisory_unlock(hashtext($1))", [`steward_migrations:${schema}`]);
    }
  } finally {
    client.release();
  }
}

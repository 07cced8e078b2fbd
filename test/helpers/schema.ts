import { randomBytes } from "node:crypto";
import { pino } from "pino";
import { inject } from "vitest";
import { type Database, openDatabase } from "../../src/db/database.js";
import { runMigrations } from "../../src/db/migrate.js";
import { TEST_DATABASE_URL } from "./services.js";

/** A schema name of this test run that no other test uses (global teardown drops it). */
export function uniqueSchema(): string {
  return `steward_test_${inject("testRunId")}_${randomBytes(4).toString("hex")}`;
}

/** A Redis key prefix of this test run that no other test uses (global teardown deletes its keys). */
export function uniqueRedisPrefix(): string {
  return `steward_test_${inject("testRunId")}_${randomBytes(4).toString("hex")}:`;
}

/**
 * A migrated PostgreSQL database in a schema of its own, holding organization `org_a`:
 * for tests of a store on its own, without a whole Steward.
 */
export async function openTestDatabase(): Promise<Database> {
  const schema = uniqueSchema();
  const database = await openDatabase(
    { kind: "postgres", connectionString: TEST_DATABASE_URL, schema, poolSize: 4 },
    pino({ level: "silent" }),
  );
  await runMigrations(database.pool, schema);
  await database.pool.query("INSERT INTO organizations (id, name) VALUES ('org_a', 'A')");
  return database;
}

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../../src/db/database.js";

/**
 * PGlite is one session that outlives the connections the pool makes to it, in process:
 * what one connection leaves behind must not reach the next.
 */
describe("connections to the embedded database", () => {
  let dataDir: string;
  let embedded: Database;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "steward-embedded-connections-"));
    embedded = await openDatabase({ kind: "embedded", dataDir }, pino({ level: "silent" }));
  });
  afterAll(async () => {
    await embedded?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("prepares named statements again on a connection that replaced one dropped after a failed query", async () => {
    const named = () =>
      embedded.pool.query({ name: "embedded_probe", text: "SELECT $1::int AS one", values: [1] });
    expect((await named()).rows).toEqual([{ one: 1 }]);
    // pg-pool drops the connection of a query that failed, and the next query opens another.
    await expect(embedded.pool.query("SELECT * FROM no_such_table")).rejects.toMatchObject({ code: "42P01" });
    expect((await named()).rows).toEqual([{ one: 1 }]);
  });

  it("rolls back the transaction of a connection dropped in the middle of it", async () => {
    await embedded.pool.query("CREATE TABLE dropped_mid_transaction (n int)");
    const client = await embedded.pool.connect();
    await client.query("BEGIN");
    await client.query("INSERT INTO dropped_mid_transaction VALUES (1)");
    client.release(true);
    const { rows } = await embedded.pool.query("SELECT count(*)::int AS n FROM dropped_mid_transaction");
    expect(rows).toEqual([{ n: 0 }]);
    // The next connection's transaction is its own: committed, it stays.
    const next = await embedded.pool.connect();
    try {
      await next.query("BEGIN");
      await next.query("INSERT INTO dropped_mid_transaction VALUES (2)");
      await next.query("COMMIT");
    } finally {
      next.release();
    }
    const after = await embedded.pool.query("SELECT array_agg(n)::int[] AS ns FROM dropped_mid_transaction");
    expect(after.rows).toEqual([{ ns: [2] }]);
  });
});

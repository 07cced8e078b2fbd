import { sql } from "drizzle-orm";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../../src/db/database.js";
import { openTestDatabase } from "../helpers/schema.js";
import { TEST_DATABASE_URL } from "../helpers/services.js";

/** Steward's pools run frequent parameterised statements as named, prepared ones. */
describe("prepared statements on a real PostgreSQL", () => {
  let database: Database;

  beforeAll(async () => {
    database = await openTestDatabase();
  });
  afterAll(async () => {
    await database?.close();
  });

  it("prepares a statement on the connection once it is frequent, and answers the same", async () => {
    const statement = (value: number) => sql`SELECT ${value}::int * 2 AS doubled, 'statement-cache' AS tag`;
    await database.db.transaction(async (tx) => {
      const prepared = async () =>
        (
          await tx.execute<{ statement: string }>(
            sql`SELECT statement FROM pg_prepared_statements WHERE statement LIKE '%statement-cache%' AND statement NOT LIKE '%pg_prepared_statements%'`,
          )
        ).rows;
      const answers: number[] = [];
      for (const value of [1, 2])
        answers.push((await tx.execute<{ doubled: number }>(statement(value))).rows[0]?.doubled as number);
      expect(await prepared()).toEqual([]);
      for (const value of [3, 4, 5, 6, 7, 8])
        answers.push((await tx.execute<{ doubled: number }>(statement(value))).rows[0]?.doubled as number);
      expect(answers).toEqual([2, 4, 6, 8, 10, 12, 14, 16]);
      expect(await prepared()).toHaveLength(1);
    });
  });

  it("keeps statements whose text varies unnamed until each is frequent", async () => {
    const inList = (values: number[]) =>
      sql`SELECT count(*)::int AS n FROM organizations WHERE id IN (${sql.join(
        values.map((value) => sql`${`org_${value}`}`),
        sql`, `,
      )}) AND 'statement-cache-varying' IS NOT NULL`;
    await database.db.transaction(async (tx) => {
      for (let size = 1; size <= 5; size++)
        await tx.execute(inList(Array.from({ length: size }, (_, i) => i)));
      const prepared = await tx.execute(
        sql`SELECT 1 FROM pg_prepared_statements WHERE statement LIKE '%statement-cache-varying%' AND statement NOT LIKE '%pg_prepared_statements%'`,
      );
      expect(prepared.rows).toEqual([]);
    });
  });

  it("recovers on a connection whose statement went stale: one query fails, the next is prepared anew", async () => {
    const single = await openDatabase(
      { kind: "postgres", connectionString: TEST_DATABASE_URL, schema: database.schema, poolSize: 1 },
      pino({ level: "silent" }),
    );
    try {
      await single.pool.query("CREATE TABLE cache_probe (a int)");
      await single.pool.query("INSERT INTO cache_probe VALUES (1)");
      const read = () => single.pool.query("SELECT * FROM cache_probe WHERE a = $1", [1]);
      for (let run = 0; run < 4; run++) await read();

      // A migration adds a column: the prepared plan's result type no longer holds.
      await single.pool.query("ALTER TABLE cache_probe ADD COLUMN b int");
      await expect(read()).rejects.toMatchObject({ code: "0A000" });
      expect((await read()).rows).toEqual([{ a: 1, b: null }]);

      // The server forgot the statements (a pooler swapped the connection under the client).
      await single.pool.query("DEALLOCATE ALL");
      await expect(read()).rejects.toMatchObject({ code: "26000" });
      expect((await read()).rows).toEqual([{ a: 1, b: null }]);
    } finally {
      await single.pool.query("DROP TABLE IF EXISTS cache_probe");
      await single.close();
    }
  });

  it("prepares nothing with STEWARD_DB_PREPARED_STATEMENTS=off, for poolers that cannot keep them", async () => {
    const unprepared = await openDatabase(
      {
        kind: "postgres",
        connectionString: TEST_DATABASE_URL,
        schema: database.schema,
        poolSize: 1,
        preparedStatements: false,
      },
      pino({ level: "silent" }),
    );
    try {
      for (let run = 0; run < 5; run++) await unprepared.pool.query("SELECT $1::int AS unprepared", [run]);
      const prepared = await unprepared.pool.query("SELECT count(*)::int AS n FROM pg_prepared_statements");
      expect(prepared.rows).toEqual([{ n: 0 }]);
    } finally {
      await unprepared.close();
    }
  });
});

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listMigrations, runMigrations } from "../../src/db/migrate.js";
import { uniqueSchema } from "../helpers/schema.js";
import { TEST_DATABASE_URL } from "../helpers/services.js";

const run = promisify(execFile);
const SCRIPT = new URL("../../scripts/run-migrations.sh", import.meta.url).pathname;

function script(env: Record<string, string>) {
  return run("bash", [SCRIPT], { env: { PATH: process.env.PATH ?? "", ...env } });
}

describe("scripts/run-migrations.sh", () => {
  const schema = uniqueSchema();
  let pool: pg.Pool;
  beforeAll(() => {
    pool = new pg.Pool({ connectionString: TEST_DATABASE_URL, options: `-c search_path=${schema}`, max: 2 });
  });
  afterAll(async () => {
    await pool?.end();
  });

  it("applies every migration with psql, then nothing on a second run", async () => {
    const first = await script({ DATABASE_URL: TEST_DATABASE_URL, STEWARD_DB_SCHEMA: schema });
    const files = await listMigrations();
    expect(first.stdout).toContain(`done (${files.length} applied, schema ${schema})`);
    const { rows } = await pool.query("SELECT count(*)::int AS n FROM external_agents");
    expect(rows[0].n).toBe(0);

    const second = await script({ DATABASE_URL: TEST_DATABASE_URL, STEWARD_DB_SCHEMA: schema });
    expect(second.stdout).toContain("done (0 applied");
  });

  it("shares its bookkeeping with steward migrate", async () => {
    const result = await runMigrations(pool, schema);
    expect(result.applied).toEqual([]);
  });

  it("reads POSTGRES_* when DATABASE_URL is absent", async () => {
    const url = new URL(TEST_DATABASE_URL);
    const other = uniqueSchema();
    const result = await script({
      POSTGRES_HOST: url.hostname,
      POSTGRES_PORT: url.port || "5432",
      POSTGRES_USER: decodeURIComponent(url.username),
      POSTGRES_DB: url.pathname.slice(1),
      STEWARD_DB_SCHEMA: other,
    });
    expect(result.stdout).toContain(`schema ${other}`);
  });

  it("exits non-zero when it cannot connect or has no target", async () => {
    await expect(
      script({ DATABASE_URL: "postgres://no_such_role@127.0.0.1:5432/test", STEWARD_DB_SCHEMA: schema }),
    ).rejects.toMatchObject({ code: expect.any(Number) });
    await expect(script({})).rejects.toMatchObject({ code: 2 });
  });
});

describe("steward migrate from replicas starting together", () => {
  it("applies each migration exactly once, and every start ends on the full schema", async () => {
    const schema = uniqueSchema();
    const pools = Array.from(
      { length: 3 },
      () => new pg.Pool({ connectionString: TEST_DATABASE_URL, options: `-c search_path=${schema}`, max: 1 }),
    );
    try {
      const results = await Promise.all(pools.map((each) => runMigrations(each, schema)));
      const files = await listMigrations();
      expect(results.flatMap((result) => result.applied).sort()).toEqual(
        files.map((file) => file.replace(/\.sql$/, "")),
      );
      const { rows } = await (pools[0] as pg.Pool).query("SELECT count(*)::int AS n FROM steward_migrations");
      expect(rows[0].n).toBe(files.length);
    } finally {
      await Promise.all(pools.map((each) => each.end()));
    }
  });
});

describe("steward migrate as a runtime role that may not create anything", () => {
  it("finds the schema migrated by another role and changes nothing", async () => {
    const schema = uniqueSchema();
    // Granted USAGE and the tables only; like any role, no CREATE on the database.
    const role = `steward_runtime_${schema.slice(-8)}`;
    const owner = new pg.Pool({ connectionString: TEST_DATABASE_URL, max: 1 });
    const url = new URL(TEST_DATABASE_URL);
    url.username = role;
    const runtime = new pg.Pool({ connectionString: url.toString(), max: 1 });
    try {
      await runMigrations(owner, schema);
      await owner.query(`CREATE ROLE "${role}" LOGIN`);
      await owner.query(`GRANT USAGE ON SCHEMA "${schema}" TO "${role}"`);
      await owner.query(
        `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "${schema}" TO "${role}"`,
      );

      expect(await runMigrations(runtime, schema)).toEqual({
        applied: [],
        alreadyApplied: (await listMigrations()).length,
      });
    } finally {
      await runtime.end();
      const { rowCount } = await owner.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]);
      // Its grants go first: a role holding privileges cannot be dropped.
      if (rowCount) await owner.query(`DROP OWNED BY "${role}"; DROP ROLE "${role}"`);
      await owner.end();
    }
  });
});

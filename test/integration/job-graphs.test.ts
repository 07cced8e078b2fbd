import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import type { NodeRunners } from "../../src/executor/graph-compiler.js";
import type { GraphDefinition } from "../../src/executor/graph-definition.js";
import { JobGraphs } from "../../src/executor/job-graphs.js";
import { SHOUT } from "../helpers/jobs.js";
import { uniqueSchema } from "../helpers/schema.js";
import { TEST_DATABASE_URL } from "../helpers/services.js";

/** The shout graph runs transform nodes only: nothing reaches a runner. */
const NO_RUNNERS = {} as NodeRunners;

/** LangGraph and its checkpoint tables come with a process's first job. */
describe("job graphs", () => {
  const schema = uniqueSchema();
  const pools = Array.from(
    { length: 4 },
    () => new pg.Pool({ connectionString: TEST_DATABASE_URL, max: 2, options: `-c search_path=${schema}` }),
  );
  afterAll(async () => {
    await pools[0]?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    for (const pool of pools) await pool.end();
  });

  it("runs the first jobs of processes starting together on a new database, each making the tables", async () => {
    const runs = await Promise.all(
      pools.map(async (pool, index) => {
        const graph = await new JobGraphs(pool, schema, NO_RUNNERS).compile(SHOUT as GraphDefinition);
        return graph.run({
          jobId: `job_first_${index}`,
          organizationId: "org_test",
          traceId: "0".repeat(32),
          input: { text: `process ${index}` },
          emit: () => {},
        });
      }),
    );
    expect(runs.map((run) => run.result)).toEqual(pools.map((_, index) => ({ text: `PROCESS ${index}` })));
    const { rows } = await (pools[0] as pg.Pool).query(
      `SELECT count(DISTINCT thread_id)::int AS threads FROM "${schema}".checkpoints`,
    );
    expect(rows).toEqual([{ threads: 4 }]);
  });
});

import { randomBytes } from "node:crypto";
import {
  type BaseCheckpointSaver,
  type Checkpoint,
  ERROR,
  emptyCheckpoint,
  type PendingWrite,
  uuid6,
} from "@langchain/langgraph-checkpoint";
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BatchedPostgresSaver } from "../../src/executor/checkpoint-saver.js";
import { compileGraph, type NodeRunners } from "../../src/executor/graph-compiler.js";
import type { GraphDefinition } from "../../src/executor/graph-definition.js";
import { SHOUT } from "../helpers/jobs.js";
import { uniqueSchema } from "../helpers/schema.js";
import { TEST_DATABASE_URL } from "../helpers/services.js";

const NO_RUNNERS = {} as NodeRunners;

/**
 * The batched checkpointer against LangGraph's own Postgres saver: what many jobs write at
 * once goes in one statement, and the tables end as the stock saver leaves them.
 */
describe("batched checkpoint saver", () => {
  let pool: pg.Pool;
  let watched: pg.Pool;
  let stock: PostgresSaver;
  let batched: BatchedPostgresSaver;
  const statements: string[] = [];

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: TEST_DATABASE_URL, max: 4 });
    stock = new PostgresSaver(pool, undefined, { schema: uniqueSchema() });
    await stock.setup();
    // The batched saver's own pool, watched: each statement it sends is counted.
    watched = new pg.Pool({ connectionString: TEST_DATABASE_URL, max: 4 });
    const query = watched.query.bind(watched) as (...args: unknown[]) => Promise<unknown>;
    (watched as unknown as { query: typeof query }).query = (...args: unknown[]) => {
      statements.push(String(args[0]));
      return query(...args);
    };
    batched = new BatchedPostgresSaver(watched, uniqueSchema());
    await batched.setup();
  });
  afterAll(async () => {
    await pool?.end();
    await watched?.end();
  });

  async function newCheckpoint(saver: BaseCheckpointSaver, thread: string) {
    const checkpoint: Checkpoint = { ...emptyCheckpoint(), id: uuid6(-1) };
    return saver.put(
      { configurable: { thread_id: thread, checkpoint_ns: "" } },
      checkpoint,
      { source: "input", step: -1, parents: {} },
      {},
    );
  }

  it("writes what arrives together in one statement, kept and replaced as one after the other would", async () => {
    const writes: Array<[PendingWrite[], string]> = [
      [[["a", 1]], "task"],
      [[[ERROR, "first error"]], "task"],
      [[["a", 2]], "task"],
      [[[ERROR, "last error"]], "task"],
    ];
    const thread = `thread_${randomBytes(4).toString("hex")}`;
    const stockConfig = await newCheckpoint(stock, thread);
    for (const [write, task] of writes) await stock.putWrites(stockConfig, write, task);

    const batchedConfig = await newCheckpoint(batched, thread);
    const otherConfig = await newCheckpoint(batched, `${thread}_other`);
    statements.length = 0;
    // Writes made in the same turn of the event loop go in one statement.
    await Promise.all([
      batched.putWrites(otherConfig, [["b", 0]], "task"),
      batched.putWrites(otherConfig, [["c", 0]], "task"),
      ...writes.map(([write, task]) => batched.putWrites(batchedConfig, write, task)),
    ]);
    expect(statements).toHaveLength(1);

    const pending = async (saver: BaseCheckpointSaver, config: typeof stockConfig) =>
      ((await saver.getTuple(config))?.pendingWrites ?? []).sort((x, y) => x[1].localeCompare(y[1]));
    expect(await pending(batched, batchedConfig)).toEqual(await pending(stock, stockConfig));
    expect(await pending(batched, batchedConfig)).toEqual([
      ["task", ERROR, "last error"],
      ["task", "a", 1],
    ]);
  });

  it("runs many jobs at once, each with the checkpoints and state one run alone leaves", async () => {
    const definition = SHOUT as GraphDefinition;
    const alone = `alone_${randomBytes(4).toString("hex")}`;
    await compileGraph(definition, NO_RUNNERS, stock).run({
      jobId: alone,
      organizationId: "org_a",
      traceId: "trace",
      input: { text: "alone" },
      emit: () => {},
    });
    const stockCheckpoints = await countCheckpoints(pool, stock, alone);

    const jobs = Array.from({ length: 20 }, (_, n) => ({ id: `job_${randomBytes(4).toString("hex")}`, n }));
    statements.length = 0;
    const runs = await Promise.all(
      jobs.map(({ id, n }) =>
        compileGraph(definition, NO_RUNNERS, batched).run({
          jobId: id,
          organizationId: "org_a",
          traceId: "trace",
          input: { text: `job ${n}` },
          firstAttempt: true,
          emit: () => {},
        }),
      ),
    );
    expect(runs.map((run) => run.result)).toEqual(jobs.map(({ n }) => ({ text: `JOB ${n}` })));
    // A first attempt looks up nothing, and twenty jobs' writes share a handful of statements.
    expect(statements.filter((text) => text.startsWith("select"))).toEqual([]);
    expect(statements.length).toBeLessThan(jobs.length);
    for (const { id, n } of jobs) {
      expect(await countCheckpoints(pool, batched, id)).toBe(stockCheckpoints);
      const state = await compileGraph(definition, NO_RUNNERS, batched).state(id);
      expect(state?.values).toMatchObject({ input: { text: `job ${n}` }, up: { text: `JOB ${n}` } });
    }
  });
});

async function countCheckpoints(pool: pg.Pool, saver: PostgresSaver, thread: string): Promise<number> {
  const schema = (saver as unknown as { options: { schema: string } }).options.schema;
  const { rows } = await pool.query(
    `SELECT count(*)::int AS n FROM "${schema}".checkpoints WHERE thread_id = $1`,
    [thread],
  );
  return rows[0].n;
}

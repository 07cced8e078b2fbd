import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AsyncLocalStorageProviderSingleton } from "@langchain/core/singletons";
import pg from "pg";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../../src/db/database.js";
import { BatchedPostgresSaver } from "../../src/executor/checkpoint-saver.js";
import {
  compileGraph,
  type GraphNodeError,
  type NodeContext,
  type NodeRunners,
} from "../../src/executor/graph-compiler.js";
import {
  type GraphDefinition,
  GraphLimitError,
  graphDefinitionErrors,
} from "../../src/executor/graph-definition.js";
import { ExpressionError } from "../../src/executor/graph-expression.js";
import { uniqueSchema } from "../helpers/schema.js";
import { TEST_DATABASE_URL } from "../helpers/services.js";

type Event = [type: string, data: Record<string, unknown>];

/** A fake of the lead's runners: each kind answers through `answer` and its calls are counted. */
function fakeRunners(
  answer: Partial<Record<keyof NodeRunners, (ctx: NodeContext) => Promise<unknown>>> = {},
) {
  const calls: Array<{ kind: keyof NodeRunners; node: string; ctx: NodeContext; state: unknown }> = [];
  const runner =
    (kind: keyof NodeRunners) =>
    async (node: { id: string }, state: unknown, ctx: NodeContext): Promise<unknown> => {
      calls.push({ kind, node: node.id, ctx, state });
      return (answer[kind] ?? (async () => ({ from: node.id })))(ctx);
    };
  const runners: NodeRunners = {
    http: runner("http"),
    llm: runner("llm"),
    external_agent: runner("external_agent"),
  };
  return { runners, calls, count: (node: string) => calls.filter((call) => call.node === node).length };
}

const edges = (...pairs: Array<[string, string, string?]>) =>
  pairs.map(([from, to, when]) => (when === undefined ? { from, to } : { from, to, when }));

const SHOUT: GraphDefinition = {
  name: "shout",
  nodes: [{ id: "up", type: "transform", expression: "{'text': $uppercase(input.text)}" }],
  edges: edges(["__start__", "up"], ["up", "__end__"]),
};

/** A valid definition (checked, so the tests run only what the API would accept). */
function valid(definition: GraphDefinition): GraphDefinition {
  expect(graphDefinitionErrors(definition)).toEqual([]);
  return definition;
}

/** Compiling and running, with the job's events collected. */
function job(saver: BatchedPostgresSaver, definition: GraphDefinition, runners = fakeRunners().runners) {
  const graph = compileGraph(valid(definition), runners, saver);
  const jobId = `job_${randomBytes(6).toString("hex")}`;
  const events: Event[] = [];
  const run = (input: unknown = {}, signal?: AbortSignal) =>
    graph.run({
      jobId,
      organizationId: "org_a",
      traceId: "trace_a",
      input,
      emit: (type, data) => events.push([type, data]),
      signal,
    });
  return { graph, jobId, events, run };
}

/** The graph compiler on PostgreSQL and on the embedded PGlite: resuming is a storage behaviour. */
describe.each(["postgres", "embedded"] as const)("graph compiler on %s", (kind) => {
  let pool: pg.Pool;
  let database: Database | undefined;
  let dataDir: string | undefined;
  let saver: BatchedPostgresSaver;

  beforeAll(async () => {
    if (kind === "postgres") {
      pool = new pg.Pool({ connectionString: TEST_DATABASE_URL, max: 4 });
    } else {
      dataDir = await mkdtemp(join(tmpdir(), "steward-graph-"));
      database = await openDatabase({ kind, dataDir }, pino({ level: "silent" }));
      pool = database.pool;
    }
    saver = new BatchedPostgresSaver(pool, uniqueSchema());
    await saver.setup();
  });
  afterAll(async () => {
    if (database) await database.close();
    else await pool?.end();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("runs the shout example", async () => {
    const { run, events } = job(saver, SHOUT);
    expect(await run({ text: "hi" })).toEqual({ result: { text: "HI" }, steps: 1, resumed: false });
    expect(events).toEqual([
      ["node_start", { node: "up" }],
      ["node_end", { node: "up", output: { text: "HI" } }],
    ]);
  });

  it("runs nodes without building a LangSmith run tree for them", async () => {
    let store: unknown = "not read";
    const { runners } = fakeRunners({
      http: async () => {
        store = AsyncLocalStorageProviderSingleton.getInstance().getStore();
        return {};
      },
    });
    const definition = valid({
      name: "fetch",
      nodes: [{ id: "fetch", type: "http", method: "GET", url: "http://127.0.0.1:9/" }],
      edges: edges(["__start__", "fetch"], ["fetch", "__end__"]),
    });
    await job(saver, definition, runners).run();
    expect(store).toBeUndefined();
  });

  it("follows the first edge whose condition holds, else the edge without one", async () => {
    const definition = valid({
      name: "route",
      nodes: [
        { id: "size", type: "transform", expression: "{'n': input.n}" },
        { id: "huge", type: "transform", expression: "'huge'" },
        { id: "big", type: "transform", expression: "'big'" },
        { id: "small", type: "transform", expression: "'small'" },
      ],
      edges: edges(
        ["__start__", "size"],
        ["size", "small"],
        ["size", "huge", "size.n > 100"],
        ["size", "big", "size.n > 10"],
        ["huge", "__end__"],
        ["big", "__end__"],
        ["small", "__end__"],
      ),
    });
    const resultFor = async (n: number) => (await job(saver, definition).run({ n })).result;
    expect(await resultFor(500)).toBe("huge");
    expect(await resultFor(50)).toBe("big");
    expect(await resultFor(5)).toBe("small");
  });

  it("ends the run when no condition holds and there is no fallback", async () => {
    const { run } = job(saver, {
      name: "stop",
      nodes: [
        { id: "a", type: "transform", expression: "1" },
        { id: "b", type: "transform", expression: "2" },
      ],
      edges: edges(["__start__", "a"], ["a", "b", "input.go"], ["b", "__end__"]),
    });
    expect((await run({ go: false })).result).toBe(1);
    expect((await job(saver, SHOUT).run({ text: "x" })).result).toEqual({ text: "X" });
  });

  it("emits node_start and node_end in order and gives runners the job's context", async () => {
    const fake = fakeRunners({ http: async () => ({ status: 200 }) });
    const { run, events, jobId } = job(
      saver,
      {
        name: "two",
        nodes: [
          { id: "fetch", type: "http", url: "https://example.com/data" },
          { id: "pick", type: "transform", expression: "fetch.status" },
        ],
        edges: edges(["__start__", "fetch"], ["fetch", "pick"], ["pick", "__end__"]),
      },
      fake.runners,
    );
    expect(await run({ q: 1 })).toEqual({ result: 200, steps: 2, resumed: false });
    expect(events).toEqual([
      ["node_start", { node: "fetch" }],
      ["node_end", { node: "fetch", output: { status: 200 } }],
      ["node_start", { node: "pick" }],
      ["node_end", { node: "pick", output: 200 }],
    ]);
    const [call] = fake.calls;
    expect(call?.state).toEqual({ input: { q: 1 } });
    expect(call?.ctx).toMatchObject({ jobId, nodeId: "fetch", organizationId: "org_a", traceId: "trace_a" });
    expect(call?.ctx.signal.aborted).toBe(false);
  });

  it("resumes a failed job from its checkpoint without running finished nodes again", async () => {
    let failures = 1;
    const outage = new Error("model unavailable");
    const fake = fakeRunners({
      http: async () => ({ fetched: true }),
      llm: async () => {
        if (failures-- > 0) throw outage;
        return "summary";
      },
    });
    const { run, events, graph, jobId } = job(
      saver,
      {
        name: "resume",
        nodes: [
          { id: "fetch", type: "http", url: "https://example.com/" },
          { id: "summarize", type: "llm", model: "m", prompt: "'go'" },
        ],
        edges: edges(["__start__", "fetch"], ["fetch", "summarize"], ["summarize", "__end__"]),
      },
      fake.runners,
    );
    const failure = await run({ text: "t" }).catch((error: unknown) => error);
    expect(failure).toMatchObject({ name: "GraphNodeError", node: "summarize" });
    expect((failure as GraphNodeError).message).toBe('node "summarize" failed: model unavailable');
    expect((failure as GraphNodeError).cause).toBe(outage);
    expect((await graph.state(jobId))?.values).toEqual({ input: { text: "t" }, fetch: { fetched: true } });

    events.length = 0;
    expect(await run({ text: "t" })).toEqual({ result: "summary", steps: 2, resumed: true });
    expect(fake.count("fetch")).toBe(1);
    expect(fake.count("summarize")).toBe(2);
    expect(events.map(([type, data]) => `${type}:${data.node}`)).toEqual([
      "node_start:summarize",
      "node_end:summarize",
    ]);
  });

  it("returns a finished job's result without running anything", async () => {
    const fake = fakeRunners();
    const { run, events } = job(
      saver,
      {
        name: "once",
        nodes: [{ id: "call", type: "external_agent", agent_id: "agt_x" }],
        edges: edges(["__start__", "call"], ["call", "__end__"]),
      },
      fake.runners,
    );
    const first = await run();
    events.length = 0;
    expect(await run()).toEqual({ ...first, resumed: true });
    expect(fake.count("call")).toBe(1);
    expect(events).toEqual([]);
  });

  it("stops a cycle at limits.max_steps and allows exactly that many steps", async () => {
    const loop = (max_steps: number): GraphDefinition => ({
      name: "loop",
      nodes: [{ id: "count", type: "transform", expression: "($exists(count) ? count : 0) + 1" }],
      edges: edges(["__start__", "count"], ["count", "count", "count < 3"], ["count", "__end__"]),
      limits: { max_steps },
    });
    expect(await job(saver, loop(3)).run()).toEqual({ result: 3, steps: 3, resumed: false });

    const { run, graph, jobId } = job(saver, loop(2));
    const error = await run().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(GraphLimitError);
    expect(error).toMatchObject({ limit: "max_steps" });
    expect((await graph.state(jobId))?.values.count).toBe(2);
    // Resuming cannot get past the limit either: it counts the job's steps, not the run's.
    await expect(run()).rejects.toMatchObject({ limit: "max_steps" });
  });

  it("fails on limits.timeout_seconds, aborting the runner's signal", async () => {
    let seen: AbortSignal | undefined;
    const fake = fakeRunners({
      llm: (ctx) => {
        seen = ctx.signal;
        return new Promise((_, reject) =>
          ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason)),
        );
      },
    });
    const { run } = job(
      saver,
      {
        name: "slow",
        nodes: [{ id: "think", type: "llm", model: "m", prompt: "'hi'" }],
        edges: edges(["__start__", "think"], ["think", "__end__"]),
        limits: { timeout_seconds: 1 },
      },
      fake.runners,
    );
    await expect(run()).rejects.toMatchObject({ name: "GraphLimitError", limit: "timeout_seconds" });
    expect(seen?.aborted).toBe(true);
  });

  it("throws the reason of the job's own signal when it aborts", async () => {
    const abort = new AbortController();
    const reason = new Error("cancelled by user");
    const fake = fakeRunners({
      llm: (ctx) => {
        abort.abort(reason);
        return new Promise((_, reject) =>
          ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason)),
        );
      },
    });
    const { run } = job(
      saver,
      {
        name: "cancel",
        nodes: [{ id: "think", type: "llm", model: "m", prompt: "'hi'" }],
        edges: edges(["__start__", "think"], ["think", "__end__"]),
      },
      fake.runners,
    );
    await expect(run({}, abort.signal)).rejects.toBe(reason);
  });

  it("reports a JSONata failure as the node's failure", async () => {
    const { run } = job(saver, {
      name: "bad",
      nodes: [{ id: "oops", type: "transform", expression: "$number('not a number')" }],
      edges: edges(["__start__", "oops"], ["oops", "__end__"]),
    });
    const error = (await run().catch((caught: unknown) => caught)) as GraphNodeError;
    expect(error).toMatchObject({ name: "GraphNodeError", node: "oops" });
    expect(error.cause).toBeInstanceOf(ExpressionError);
    expect(error.message).toMatch(/^node "oops" failed: D3030: /);

    const { run: route } = job(saver, {
      name: "bad-edge",
      nodes: [{ id: "ok", type: "transform", expression: "1" }],
      edges: edges(["__start__", "ok"], ["ok", "__end__", "$number('x') > 0"]),
    });
    await expect(route()).rejects.toMatchObject({
      name: "GraphNodeError",
      node: "ok",
      message: expect.stringMatching(/^node "ok" failed choosing its edge to "__end__": D3030: /),
    });
  });

  it("keeps checkpoint look-alikes in the state as data", async () => {
    const lookalike = {
      lc: 1,
      type: "constructor",
      id: ["langchain_core", "messages", "HumanMessage"],
      kwargs: {},
    };
    const fake = fakeRunners({ http: async () => ({ body: lookalike, gone: { lc: 2, type: "undefined" } }) });
    const { run, graph, jobId } = job(
      saver,
      {
        name: "lookalike",
        nodes: [
          { id: "fetch", type: "http", url: "https://example.com/" },
          { id: "echo", type: "transform", expression: "fetch" },
        ],
        edges: edges(["__start__", "fetch"], ["fetch", "echo"], ["echo", "__end__"]),
      },
      fake.runners,
    );
    const expected = { body: lookalike, gone: { lc: 2, type: "undefined" } };
    expect((await run()).result).toEqual(expected);
    expect((await graph.state(jobId))?.values.echo).toEqual(expected);
  });

  it("gives a job's latest state", async () => {
    const { run, graph, jobId } = job(saver, SHOUT);
    expect(await graph.state(jobId)).toBeUndefined();
    await run({ text: "hi" });
    const state = await graph.state(jobId);
    expect(state?.values).toEqual({ input: { text: "hi" }, up: { text: "HI" } });
  });
});

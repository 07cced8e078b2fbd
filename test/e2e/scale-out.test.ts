import { randomBytes } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../helpers/eventually.js";
import { oneNodeGraph, publishJob } from "../helpers/jobs.js";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import { freePort } from "../helpers/ports.js";
import { TEST_DATABASE_URL, TEST_NATS_URL } from "../helpers/services.js";
import { type StewardProcess, spawnSteward, stewardEnvironment } from "../helpers/steward-process.js";

/**
 * Three Steward processes — two `serve`, one `worker` — on one PostgreSQL, Redis and
 * NATS, as replicas run in production: limits and budgets hold exactly across them,
 * each delivery and job happens once, and losing or restarting an API process loses no
 * accepted call.
 */
describe("scale-out: two API processes and a worker", () => {
  const run = randomBytes(4).toString("hex");
  const prefix = `t${run}.agent`;
  const stream = `SCALE_${run.toUpperCase()}`;
  const { schema, env, headers } = stewardEnvironment({
    NATS_URL: TEST_NATS_URL,
    STEWARD_JOBS_STREAM: stream,
    STEWARD_JOBS_SUBJECT_PREFIX: prefix,
    STEWARD_JOBS_CONSUMER: `workers-${run}`,
    STEWARD_SHUTDOWN_DELAY_SECONDS: "1",
    STEWARD_SHUTDOWN_TIMEOUT_SECONDS: "10",
    LOG_LEVEL: "warn",
  });
  const processes: StewardProcess[] = [];
  const apis: Array<{ port: number; process: StewardProcess; up: boolean }> = [];
  let agent: MockAgent;
  let platform: MockAgent;
  let nats: NatsConnection;
  let database: pg.Client;
  const completedJobs: string[] = [];
  let workerPort: number;

  const baseOf = (port: number) => `http://127.0.0.1:${port}`;
  const liveBases = () => apis.filter((api) => api.up).map((api) => baseOf(api.port));

  async function startApi(port: number): Promise<StewardProcess> {
    const steward = spawnSteward("serve", { ...env, PORT: String(port), LOG_LEVEL: "info" });
    processes.push(steward);
    await steward.waitForOutput(/Server listening/);
    return steward;
  }

  beforeAll(async () => {
    agent = await startMockAgent();
    platform = await startMockAgent(() => ({ status: 200, body: "ok" }));
    database = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await database.connect();
    nats = await connect({ servers: TEST_NATS_URL });
    nats.subscribe(`${prefix}.status.completed`, {
      callback: (_error, message) => {
        completedJobs.push((message.json() as { data: { job_id: string } }).data.job_id);
      },
    });
    // The first API process creates the schema; the others start on it.
    const first = await freePort();
    apis.push({ port: first, process: await startApi(first), up: true });
    const second = await freePort();
    workerPort = await freePort();
    const worker = spawnSteward("worker", {
      ...env,
      LOG_LEVEL: "info",
      STEWARD_WORKER_PORT: String(workerPort),
    });
    processes.push(worker);
    const [api2] = await Promise.all([startApi(second), worker.waitForOutput(/worker consuming jobs/)]);
    apis.push({ port: second, process: api2, up: true });
  }, 120_000);

  afterAll(async () => {
    for (const steward of processes) await steward.kill("SIGKILL");
    if (nats) {
      const manager = await jetstreamManager(nats);
      for (const name of [stream, `${stream}_STATUS`]) await manager.streams.delete(name).catch(() => false);
      await nats.drain();
    }
    await database?.end();
    await agent?.close();
    await platform?.close();
  });

  async function register(overrides: Record<string, unknown>): Promise<string> {
    const response = await fetch(`${liveBases()[0]}/api/v1/external-agents`, {
      method: "POST",
      headers,
      body: JSON.stringify({
        name: `scale-${randomBytes(3).toString("hex")}`,
        platform: "custom_http",
        webhook_url: agent.url,
        ...overrides,
      }),
    });
    expect(response.status, await response.clone().text()).toBe(201);
    return ((await response.json()) as { id: string }).id;
  }

  const invokeAt = (base: string, agentId: string) =>
    fetch(`${base}/api/v1/external-agents/${agentId}/invoke`, {
      method: "POST",
      headers,
      body: JSON.stringify({ input: "scale" }),
    });

  /** Fires `count` calls at once, alternating between the API processes; answers their statuses. */
  async function burst(agentId: string, count: number): Promise<number[]> {
    const bases = liveBases();
    const responses = await Promise.all(
      Array.from({ length: count }, (_, index) => invokeAt(bases[index % bases.length] as string, agentId)),
    );
    return Promise.all(
      responses.map(async (response) => {
        await response.arrayBuffer();
        return response.status;
      }),
    );
  }

  it("holds a rate limit exactly across both API processes", async () => {
    const agentId = await register({ rate_limit_config: { requests_per_hour: 20 } });
    const statuses = await burst(agentId, 40);
    expect(statuses.filter((status) => status === 200)).toHaveLength(20);
    expect(statuses.filter((status) => status === 429)).toHaveLength(20);
  }, 60_000);

  it("holds a budget exactly across both API processes", async () => {
    // 20 calls at 0.25 fill the daily 5.00.
    const agentId = await register({ budget_config: { cost_per_execution: 0.25, max_daily_cost: 5 } });
    const statuses = await burst(agentId, 40);
    expect(statuses.filter((status) => status === 200)).toHaveLength(20);
    expect(statuses.filter((status) => status === 402)).toHaveLength(20);
  }, 60_000);

  it("delivers each result once, though both API processes run delivery workers", async () => {
    const agentId = await register({
      platform: "slack",
      platform_config: { webhook_url: platform.url, channel: "#ops" },
    });
    const statuses = await burst(agentId, 30);
    expect(statuses.every((status) => status === 200)).toBe(true);
    const deliveryIds = () => platform.requests.map((request) => request.headers["x-steward-delivery-id"]);
    await until(() => platform.requests.length >= 30, 30_000);
    // Anything sent twice would arrive by now: the deliveries are all marked delivered.
    await until(async () => {
      const pending = await database.query(
        `SELECT count(*)::int AS n FROM ${schema}.deliveries WHERE status <> 'delivered'`,
      );
      return pending.rows[0].n === 0;
    }, 30_000);
    expect(platform.requests).toHaveLength(30);
    expect(new Set(deliveryIds()).size).toBe(30);
  }, 60_000);

  it("runs each job once, though all three processes consume the stream", async () => {
    const ids = Array.from({ length: 30 }, (_, index) => `job_scale_${run}_${index}`);
    const definition = oneNodeGraph("double", {
      id: "double",
      type: "transform",
      expression: "{'n': input.n * 2}",
    });
    for (const id of ids) await publishJob(nats, prefix, { id, definition, input: { n: 21 } });
    await until(() => ids.every((id) => completedJobs.includes(id)), 60_000);
    for (const id of ids) expect(completedJobs.filter((done) => done === id)).toHaveLength(1);
    const stored = await database.query(
      `SELECT status, attempts, count(*)::int AS n FROM ${schema}.jobs WHERE id = ANY($1) GROUP BY status, attempts`,
      [ids],
    );
    expect(stored.rows).toEqual([{ status: "completed", attempts: 1, n: 30 }]);
  }, 90_000);

  it("counts every job in the metrics of the process that ran it; the worker answers probes, not the API", async () => {
    const worker = baseOf(workerPort);
    expect(await (await fetch(`${worker}/health`)).json()).toEqual({ status: "ok" });
    const ready = await fetch(`${worker}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      status: "ready",
      checks: { database: "ok", redis: "ok", nats: "ok" },
      database: "postgres",
    });
    for (const path of ["/api/v1/external-agents", "/openapi.json", "/docs"])
      expect((await fetch(`${worker}${path}`, { headers })).status, path).toBe(404);

    // Summed over the three processes, as Prometheus would across pods.
    const completedSoFar = async () => {
      let completed = 0;
      for (const base of [...liveBases(), worker]) {
        const metrics = await (await fetch(`${base}/metrics`)).text();
        completed += Number(/^steward_jobs_total\{event="completed"\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
      }
      return completed;
    };
    const before = await completedSoFar();
    const ids = Array.from({ length: 12 }, (_, index) => `job_counted_${run}_${index}`);
    const definition = oneNodeGraph("same", { id: "same", type: "transform", expression: "input" });
    for (const id of ids) await publishJob(nats, prefix, { id, definition, input: {} });
    await until(() => ids.every((id) => completedJobs.includes(id)), 60_000);
    expect((await completedSoFar()) - before).toBe(12);
  }, 90_000);

  /**
   * Clients calling whichever API process is up, as behind a load balancer: a 503 or a
   * refused connection is retried on the next one. Answers what each logical call got.
   */
  function loadUntil(agentId: string, done: () => boolean) {
    const accepted: Array<{ id: string; base: string; at: number }> = [];
    let dropped = 0;
    let next = 0;
    const client = async () => {
      while (!done()) {
        let answered = false;
        for (let attempt = 0; attempt < 100 && !answered; attempt++) {
          const bases = liveBases();
          const base = bases[next++ % Math.max(1, bases.length)];
          if (!base) {
            await new Promise((resolve) => setTimeout(resolve, 50));
            continue;
          }
          try {
            const response = await invokeAt(base, agentId);
            const body = (await response.json()) as { invocation_id?: string };
            if (response.status === 503) continue;
            answered = true;
            if (response.status === 200 && body.invocation_id)
              accepted.push({ id: body.invocation_id, base, at: Date.now() });
            else dropped += 1;
          } catch {
            // Refused or reset (a process stopping or killed): the next process takes it.
          }
        }
        if (!answered) dropped += 1;
      }
    };
    const clients = Promise.all(Array.from({ length: 6 }, client));
    return { accepted, dropped: () => dropped, finished: clients };
  }

  async function recordedSuccesses(ids: string[]): Promise<number> {
    const result = await database.query(
      `SELECT count(*)::int AS n FROM ${schema}.invocations WHERE id = ANY($1) AND status = 'success'`,
      [ids],
    );
    return result.rows[0].n;
  }

  it("loses no accepted call when an API process is killed mid-load; the other keeps serving", async () => {
    const agentId = await register({});
    let stop = false;
    const load = loadUntil(agentId, () => stop);
    await until(() => load.accepted.length >= 50, 30_000);
    const victim = apis[0] as (typeof apis)[number];
    victim.up = false;
    await victim.process.kill("SIGKILL");
    const killedAt = Date.now();
    const survivor = baseOf((apis[1] as (typeof apis)[number]).port);
    await until(
      () => load.accepted.filter((call) => call.at > killedAt && call.base === survivor).length >= 50,
      30_000,
    );
    stop = true;
    await load.finished;

    expect(
      load.accepted.filter((call) => call.at > killedAt && call.base === survivor).length,
    ).toBeGreaterThanOrEqual(50);
    expect(load.dropped()).toBe(0);
    expect(await recordedSuccesses(load.accepted.map((call) => call.id))).toBe(load.accepted.length);

    // Back to two for the rolling restart.
    victim.process = await startApi(victim.port);
    victim.up = true;
  }, 120_000);

  it("drops no call a client retries on 503 through a rolling restart", async () => {
    const agentId = await register({});
    let stop = false;
    const load = loadUntil(agentId, () => stop);
    await until(() => load.accepted.length >= 30, 30_000);
    for (const api of apis) {
      // SIGTERM: unready at once, the listener closes after the delay, calls under way finish.
      await api.process.kill("SIGTERM");
      api.up = false;
      api.process = await startApi(api.port);
      api.up = true;
      const restartedAt = Date.now();
      await until(
        () => load.accepted.some((call) => call.at > restartedAt && call.base === baseOf(api.port)),
        30_000,
      );
    }
    stop = true;
    await load.finished;

    expect(load.dropped()).toBe(0);
    expect(load.accepted.length).toBeGreaterThan(30);
    expect(await recordedSuccesses(load.accepted.map((call) => call.id))).toBe(load.accepted.length);
  }, 180_000);
});

import { randomBytes } from "node:crypto";
import { once } from "node:events";
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
 * SIGTERM as Kubernetes sends it: readiness goes false first, the listener closes, what
 * is under way finishes up to STEWARD_SHUTDOWN_TIMEOUT_SECONDS, and what is not finished
 * by then is cut — a job's message left unacknowledged for another worker.
 */
describe("graceful shutdown", () => {
  const run = randomBytes(4).toString("hex");
  const { schema, env, headers } = stewardEnvironment();
  const processes: StewardProcess[] = [];
  const agents: MockAgent[] = [];
  let database: pg.Client;

  beforeAll(async () => {
    database = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await database.connect();
  });
  afterAll(async () => {
    for (const steward of processes) await steward.kill("SIGKILL");
    for (const agent of agents) await agent.close();
    await database?.end();
  });

  async function serve(extra: Record<string, string>): Promise<{ steward: StewardProcess; base: string }> {
    const port = await freePort();
    const steward = spawnSteward("serve", { ...env, ...extra, PORT: String(port) });
    processes.push(steward);
    await steward.waitForOutput(/Server listening/);
    return { steward, base: `http://127.0.0.1:${port}` };
  }

  async function register(base: string, agent: MockAgent): Promise<string> {
    const response = await fetch(`${base}/api/v1/external-agents`, {
      method: "POST",
      headers,
      body: JSON.stringify({
        name: `shutdown-${randomBytes(3).toString("hex")}`,
        platform: "custom_http",
        webhook_url: agent.url,
      }),
    });
    expect(response.status, await response.clone().text()).toBe(201);
    return ((await response.json()) as { id: string }).id;
  }

  const invoke = (base: string, agentId: string) =>
    fetch(`${base}/api/v1/external-agents/${agentId}/invoke`, {
      method: "POST",
      headers,
      body: JSON.stringify({ input: "finish me" }),
    });

  const exitOf = (steward: StewardProcess) =>
    steward.child.exitCode !== null ? Promise.resolve([steward.child.exitCode]) : once(steward.child, "exit");

  it("goes unready first, finishes the call under way, records it, and exits 0", async () => {
    let release: () => void = () => {};
    const answered = new Promise<void>((resolve) => (release = resolve));
    const agent = await startMockAgent(async () => {
      await answered;
      return { body: { result: "done" } };
    });
    agents.push(agent);
    const { steward, base } = await serve({
      // Long enough that a busy machine still asks /ready before the listener closes.
      STEWARD_SHUTDOWN_DELAY_SECONDS: "3",
      STEWARD_SHUTDOWN_TIMEOUT_SECONDS: "20",
    });
    const agentId = await register(base, agent);
    expect((await fetch(`${base}/ready`)).status).toBe(200);

    const call = invoke(base, agentId);
    await until(() => agent.requests.length === 1);
    expect(agent.requests).toHaveLength(1);
    const exited = exitOf(steward);
    steward.child.kill("SIGTERM");
    await steward.waitForOutput(/shutting down/);

    // Within the delay the listener still answers, and says it is not ready.
    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { error: { message: string } }).error.message).toBe(
      "Not ready: shutting down",
    );

    release();
    const response = await call;
    expect(response.status).toBe(200);
    const { invocation_id } = (await response.json()) as { invocation_id: string };
    expect(await exited).toEqual([0, null]);
    const recorded = await database.query(`SELECT status FROM ${schema}.invocations WHERE id = $1`, [
      invocation_id,
    ]);
    expect(recorded.rows).toEqual([{ status: "success" }]);
  }, 90_000);

  it("cuts a call still running at the deadline and exits", async () => {
    const agent = await startMockAgent(() => ({ hang: true }));
    agents.push(agent);
    const { steward, base } = await serve({ STEWARD_SHUTDOWN_TIMEOUT_SECONDS: "1" });
    const agentId = await register(base, agent);

    const call = invoke(base, agentId).then(
      (response) => `answered ${response.status}`,
      () => "cut",
    );
    await until(() => agent.requests.length === 1);
    const exited = exitOf(steward);
    steward.child.kill("SIGTERM");
    expect(await call).toBe("cut");
    expect(await exited).toEqual([0, null]);
    await steward.waitForOutput(/shutdown deadline passed/);
  }, 90_000);

  describe("a worker with a job under way", () => {
    const stream = `SHUTDOWN_${run.toUpperCase()}`;
    const prefix = `t${run}.agent`;
    const jobs = {
      NATS_URL: TEST_NATS_URL,
      STEWARD_JOBS_STREAM: stream,
      STEWARD_JOBS_SUBJECT_PREFIX: prefix,
      STEWARD_JOBS_CONSUMER: `workers-${run}`,
      // Short, so the message the stopped worker left comes back within seconds.
      STEWARD_JOBS_ACK_WAIT_S: "3",
    };
    let nats: NatsConnection;
    const completed: string[] = [];

    beforeAll(async () => {
      nats = await connect({ servers: TEST_NATS_URL });
      nats.subscribe(`${prefix}.status.completed`, {
        callback: (_error, message) => {
          completed.push((message.json() as { data: { job_id: string } }).data.job_id);
        },
      });
    });
    afterAll(async () => {
      const manager = await jetstreamManager(nats);
      for (const name of [stream, `${stream}_STATUS`]) await manager.streams.delete(name).catch(() => false);
      await nats?.drain();
    });

    const startWorker = async () => {
      const worker = spawnSteward("worker", {
        ...env,
        ...jobs,
        STEWARD_SHUTDOWN_TIMEOUT_SECONDS: "1",
        STEWARD_WORKER_PORT: String(await freePort()),
      });
      processes.push(worker);
      await worker.waitForOutput(/worker consuming jobs/);
      return worker;
    };

    it("leaves the job's message unacknowledged past the deadline; the next worker completes it once", async () => {
      // The first call never answers: the worker is stopped while it waits.
      const lookup = await startMockAgent((_request, index) =>
        index === 0 ? { hang: true } : { body: { owner: "team-blue" } },
      );
      agents.push(lookup);
      const jobId = `job_shutdown_${run}`;
      const definition = oneNodeGraph("lookup", {
        id: "lookup",
        type: "http",
        url: lookup.url,
        method: "POST",
        body: "{'file': input.file}",
      });

      const first = await startWorker();
      await publishJob(nats, prefix, { id: jobId, definition, input: { file: "report.pdf" } });
      await until(() => lookup.requests.length === 1, 30_000);
      expect(lookup.requests).toHaveLength(1);
      const exited = exitOf(first);
      first.child.kill("SIGTERM");
      expect(await exited).toEqual([0, null]);
      await first.waitForOutput(/jobs still running; they will be redelivered/);
      expect(completed).not.toContain(jobId);

      await startWorker();
      await until(() => completed.includes(jobId), 30_000);
      expect(completed.filter((id) => id === jobId)).toHaveLength(1);
      const job = await database.query(`SELECT status, attempts FROM ${schema}.jobs WHERE id = $1`, [jobId]);
      expect(job.rows).toEqual([{ status: "completed", attempts: 2 }]);
      expect(lookup.requests).toHaveLength(2);
    }, 120_000);
  });
});

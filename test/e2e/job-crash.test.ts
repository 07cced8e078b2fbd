import { randomBytes } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../helpers/eventually.js";
import { publishJob, sseEvents } from "../helpers/jobs.js";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import { freePort } from "../helpers/ports.js";
import { uniqueRedisPrefix, uniqueSchema } from "../helpers/schema.js";
import { TEST_DATABASE_URL, TEST_NATS_URL, TEST_REDIS_URL } from "../helpers/services.js";
import { registerAgent, startTestSteward, type TestSteward } from "../helpers/steward.js";
import { type StewardProcess, spawnSteward } from "../helpers/steward-process.js";

/**
 * `steward worker` killed with SIGKILL in the middle of a job, then started again: the
 * JetStream message comes back after ack_wait, the job resumes from its last checkpoint,
 * and the node that had completed — an external agent call — is not run a second time.
 */
describe("a job across a worker crash", () => {
  const run = randomBytes(4).toString("hex");
  const stream = `CRASH_${run.toUpperCase()}`;
  const prefix = `t${run}.agent`;
  const env = {
    DATABASE_URL: TEST_DATABASE_URL,
    STEWARD_DB_SCHEMA: uniqueSchema(),
    REDIS_URL: TEST_REDIS_URL,
    STEWARD_REDIS_PREFIX: uniqueRedisPrefix(),
    STEWARD_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    STEWARD_ALLOW_PRIVATE_NETWORKS: "127.0.0.1/32",
    STEWARD_JOBS_STREAM: stream,
    STEWARD_JOBS_SUBJECT_PREFIX: prefix,
    STEWARD_JOBS_CONSUMER: `workers-${run}`,
    // Short, so the dead worker's message comes back within seconds.
    STEWARD_JOBS_ACK_WAIT_S: "3",
    LOG_LEVEL: "info",
  };
  const processes: StewardProcess[] = [];
  let api: TestSteward;
  let nats: NatsConnection;
  let scanner: MockAgent;
  let enricher: MockAgent;
  const completed: Array<{ subject: string; data: { job_id: string; result: unknown } }> = [];

  beforeAll(async () => {
    scanner = await startMockAgent(() => ({ body: { result: { verdict: "benign" } } }));
    // The first call never answers: the worker is killed while it waits.
    enricher = await startMockAgent((_request, index) =>
      index === 0 ? { hang: true } : { body: { owner: "team-blue" } },
    );
    // The API side (jobs readable, agents registered) shares the worker's database; it consumes nothing.
    api = await startTestSteward("postgres", env);
    nats = await connect({ servers: TEST_NATS_URL });
    nats.subscribe(`${prefix}.status.completed`, {
      callback: (_error, message) => {
        completed.push(message.json());
      },
    });
  });
  afterAll(async () => {
    for (const worker of processes) await worker.kill("SIGKILL");
    await api?.close();
    const manager = await jetstreamManager(nats);
    for (const name of [stream, `${stream}_STATUS`]) await manager.streams.delete(name).catch(() => false);
    await nats?.drain();
    await scanner?.close();
    await enricher?.close();
  });

  const startWorker = async () => {
    const worker = spawnSteward("worker", {
      ...env,
      NATS_URL: TEST_NATS_URL,
      STEWARD_WORKER_PORT: String(await freePort()),
    });
    processes.push(worker);
    await worker.waitForOutput(/worker consuming jobs/);
    return worker;
  };

  it("resumes from the last checkpoint: the completed agent call runs once, the job completes", async () => {
    const agentId = await registerAgent(api, scanner.url);
    const jobId = `job_crash_${run}`;
    const definition = {
      name: "triage",
      nodes: [
        { id: "scan", type: "external_agent", agent_id: agentId, input: "input.file" },
        { id: "enrich", type: "http", url: enricher.url, method: "POST", body: "{'file': input.file}" },
        {
          id: "report",
          type: "transform",
          expression: "{'verdict': scan.verdict, 'owner': enrich.body.owner}",
        },
      ],
      edges: [
        { from: "__start__", to: "scan" },
        { from: "scan", to: "enrich" },
        { from: "enrich", to: "report" },
        { from: "report", to: "__end__" },
      ],
    };

    const first = await startWorker();
    await publishJob(nats, prefix, { id: jobId, definition, input: { file: "report.pdf" } });
    await until(() => enricher.requests.length === 1, 30_000);
    expect(scanner.requests).toHaveLength(1);
    await first.kill("SIGKILL");

    await startWorker();
    await until(() => completed.some((result) => result.data.job_id === jobId), 30_000);

    const job = (await api.request({ method: "GET", url: `/api/v1/jobs/${jobId}` })).json();
    expect(job).toMatchObject({
      status: "completed",
      attempts: 2,
      result: { verdict: "benign", owner: "team-blue" },
    });
    expect(scanner.requests).toHaveLength(1);
    // The node that was running when the worker died is the one that runs again.
    expect(enricher.requests).toHaveLength(2);
    expect(completed.filter((result) => result.data.job_id === jobId)).toHaveLength(1);
    const history = await api.request({ method: "GET", url: `/api/v1/jobs/${jobId}/stream` });
    const nodeEnds = sseEvents(history.body)
      .filter((streamed) => streamed.event_type === "node_end")
      .map((streamed) => streamed.data.node);
    expect(nodeEnds).toEqual(["scan", "enrich", "report"]);
  }, 120_000);
});

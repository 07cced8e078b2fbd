import { randomBytes } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../helpers/eventually.js";
import { SHOUT } from "../helpers/jobs.js";
import { uniqueSchema } from "../helpers/schema.js";
import { TEST_NATS_URL } from "../helpers/services.js";
import { startTestSteward, type TestSteward } from "../helpers/steward.js";

/** STEWARD_JOBS_CONSUME=off: the API takes job submissions and leaves running them to workers. */
describe("an API process that does not consume jobs", () => {
  const run = randomBytes(4).toString("hex");
  const stream = `OFF_${run.toUpperCase()}`;
  const shared = {
    NATS_URL: TEST_NATS_URL,
    STEWARD_DB_SCHEMA: uniqueSchema(),
    STEWARD_JOBS_STREAM: stream,
    STEWARD_JOBS_SUBJECT_PREFIX: `t${run}.agent`,
    STEWARD_JOBS_CONSUMER: `workers-${run}`,
  };
  let api: TestSteward;
  let worker: TestSteward | undefined;
  let nats: NatsConnection;

  beforeAll(async () => {
    nats = await connect({ servers: TEST_NATS_URL });
    api = await startTestSteward("postgres", { ...shared, STEWARD_JOBS_CONSUME: "off" });
  });
  afterAll(async () => {
    await worker?.close();
    await api?.close();
    const manager = await jetstreamManager(nats);
    for (const name of [stream, `${stream}_STATUS`]) await manager.streams.delete(name).catch(() => false);
    await nats?.drain();
  });

  const consumerInfo = async () =>
    (await jetstreamManager(nats)).consumers.info(stream, shared.STEWARD_JOBS_CONSUMER);
  const statusOf = async (id: string) =>
    (await api.request({ method: "GET", url: `/api/v1/jobs/${id}` })).json().status as string;

  it("queues a submitted job without pulling it; a worker runs it", async () => {
    const submitted = await api.request({
      method: "POST",
      url: "/api/v1/jobs",
      payload: { agent_definition: SHOUT, input_payload: { text: "later" } },
    });
    expect(submitted.statusCode, submitted.body).toBe(202);
    const id = submitted.json().id as string;
    await until(async () => (await consumerInfo()).num_pending === 1);
    const waiting = await consumerInfo();
    // Nobody is pulling: no pull request waits at the consumer, and the job is untouched.
    expect(waiting).toMatchObject({ num_pending: 1, num_waiting: 0, num_ack_pending: 0 });
    // No job has run on this database yet, so neither have its checkpoint tables been made.
    const queued = await api.request({ method: "GET", url: `/api/v1/jobs/${id}` });
    expect(queued.statusCode, queued.body).toBe(200);
    expect(queued.json()).toMatchObject({ status: "queued", checkpoints: 0 });

    worker = await startTestSteward("postgres", shared);
    await until(async () => (await statusOf(id)) === "completed", 30_000);
    const job = (await api.request({ method: "GET", url: `/api/v1/jobs/${id}` })).json();
    expect(job).toMatchObject({
      status: "completed",
      result: { text: "LATER" },
      attempts: 1,
      checkpoints: 3,
    });
  }, 60_000);
});

import { randomBytes } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jobSubmission, structuredBytes } from "../../src/executor/job-event.js";
import { until } from "../helpers/eventually.js";
import { SHOUT } from "../helpers/jobs.js";
import { TEST_NATS_URL } from "../helpers/services.js";
import { startTestSteward, type TestSteward } from "../helpers/steward.js";

interface ResultEvent {
  type: string;
  subject: string;
  traceparent: string;
  data: { job_id: string; result?: unknown; error?: { message: string } };
}

/** Jobs arriving on JetStream: results on agent.status.*, dead letters, one run per job id. */
describe("jobs over JetStream", () => {
  const run = randomBytes(4).toString("hex");
  const stream = `T_${run.toUpperCase()}`;
  const prefix = `t${run}.agent`;
  let t: TestSteward;
  let nats: NatsConnection;
  const results: ResultEvent[] = [];

  beforeAll(async () => {
    nats = await connect({ servers: TEST_NATS_URL });
    for (const outcome of ["completed", "failed"])
      nats.subscribe(`${prefix}.status.${outcome}`, {
        callback: (_error, message) => {
          results.push(message.json() as ResultEvent);
        },
      });
    t = await startTestSteward("postgres", {
      NATS_URL: TEST_NATS_URL,
      STEWARD_JOBS_STREAM: stream,
      STEWARD_JOBS_SUBJECT_PREFIX: prefix,
      STEWARD_JOBS_CONSUMER: `workers-${run}`,
      STEWARD_JOBS_MAX_DELIVER: "2",
    });
  });
  afterAll(async () => {
    await t?.close();
    const manager = await jetstreamManager(nats);
    for (const name of [stream, `${stream}_STATUS`]) await manager.streams.delete(name).catch(() => false);
    await nats?.drain();
  });

  const publish = async (jobId: string, definition: unknown, input: unknown) => {
    const traceId = randomBytes(16).toString("hex");
    const event = jobSubmission(
      { job_id: jobId, trace_id: traceId, agent_definition: definition, input_payload: input },
      "test",
    );
    await jetstream(nats).publish(`${prefix}.execute.demo`, structuredBytes(event), {
      msgID: `${jobId}-${randomBytes(2).toString("hex")}`,
    });
    return traceId;
  };
  const resultsOf = (jobId: string) => results.filter((event) => event.subject === jobId);
  const sql = async (text: string, params: unknown[]) =>
    (await t.steward.database.pool.query(text, params)).rows;

  it("runs a job published to agent.execute.demo and announces it on agent.status.completed", async () => {
    const jobId = `demo-${run}`;
    const traceId = await publish(jobId, SHOUT, { text: "hello" });
    await until(() => resultsOf(jobId).length > 0);
    const [event] = resultsOf(jobId);
    expect(event).toMatchObject({
      type: "agent.status.completed",
      subject: jobId,
      data: { job_id: jobId, result: { text: "HELLO" } },
    });
    expect(event?.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    const job = (await t.request({ method: "GET", url: `/api/v1/jobs/${jobId}` })).json();
    expect(job).toMatchObject({ status: "completed", source: "jetstream", attempts: 1 });
  });

  it("runs the same job id once, and publishes one result", async () => {
    const jobId = `twice-${run}`;
    await publish(jobId, SHOUT, { text: "one" });
    await publish(jobId, SHOUT, { text: "one" });
    await until(() => resultsOf(jobId).length > 0);
    // A third, distinct job passes through after both copies: by then the second copy was handled.
    const marker = `marker-${run}`;
    await publish(marker, SHOUT, { text: "m" });
    await until(() => resultsOf(marker).length > 0);
    expect(resultsOf(jobId)).toHaveLength(1);
    expect((await t.request({ method: "GET", url: `/api/v1/jobs/${jobId}` })).json().attempts).toBe(1);
  });

  it("dead-letters a malformed message with its raw bytes and goes on with the next", async () => {
    const raw = `not a cloudevent ${run}`;
    await jetstream(nats).publish(`${prefix}.execute.demo`, new TextEncoder().encode(raw));
    const next = `after-garbage-${run}`;
    await publish(next, SHOUT, { text: "next" });
    await until(() => resultsOf(next).length > 0);
    await until(
      async () => (await sql("SELECT 1 FROM job_dead_letters WHERE raw = $1", [Buffer.from(raw)])).length > 0,
    );
    const [letter] = await sql("SELECT subject, reason FROM job_dead_letters WHERE raw = $1", [
      Buffer.from(raw),
    ]);
    expect(letter).toMatchObject({ subject: `${prefix}.execute.demo` });
    expect(resultsOf(next)[0]?.type).toBe("agent.status.completed");
  });

  it("ends a job that keeps failing on agent.status.failed after max_deliver", async () => {
    const jobId = `failing-${run}`;
    const failing = {
      name: "failing",
      nodes: [{ id: "call", type: "http", url: "http://127.0.0.1:1/refused" }],
      edges: [
        { from: "__start__", to: "call" },
        { from: "call", to: "__end__" },
      ],
    };
    await publish(jobId, failing, {});
    await until(() => resultsOf(jobId).length > 0, 20_000);
    expect(resultsOf(jobId)).toEqual([
      expect.objectContaining({
        type: "agent.status.failed",
        data: expect.objectContaining({ job_id: jobId }),
      }),
    ]);
    const job = (await t.request({ method: "GET", url: `/api/v1/jobs/${jobId}` })).json();
    expect(job).toMatchObject({ status: "failed", attempts: 2 });
    expect(await sql("SELECT 1 FROM job_dead_letters WHERE job_id = $1", [jobId])).toHaveLength(1);
  });

  // Last: it takes the jobs stream away.
  it("answers 503 when JetStream does not take a submitted job, and keeps no job that would never run", async () => {
    await (await jetstreamManager(nats)).streams.delete(stream);
    const refused = await t.request({
      method: "POST",
      url: "/api/v1/jobs",
      payload: { agent_definition: SHOUT, input_payload: { text: "lost?" } },
    });
    expect(refused.statusCode).toBe(503);
    expect(refused.json().error.message).toMatch(/submit it again, with a job_id/);
    const queued = await t.request({ method: "GET", url: "/api/v1/jobs?status=queued" });
    expect(queued.json().total).toBe(0);
  });
});

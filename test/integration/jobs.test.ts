import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../helpers/eventually.js";
import { oneNodeGraph, SHOUT, sseEvents } from "../helpers/jobs.js";
import { startMockAgent } from "../helpers/mock-agent.js";
import {
  createKey,
  createOrgWithKey,
  type StorageKind,
  startTestSteward,
  type TestSteward,
} from "../helpers/steward.js";

/** Jobs submitted over HTTP and run in process (the embedded default), on both stores. */
describe.each<StorageKind>(["postgres", "embedded"])("jobs in process on %s", (kind) => {
  let t: TestSteward;

  beforeAll(async () => {
    t = await startTestSteward(kind, { STEWARD_ALLOW_PRIVATE_NETWORKS: "127.0.0.1/32" });
  });
  afterAll(async () => {
    await t?.close();
  });

  const job = async (id: string) => (await t.request({ method: "GET", url: `/api/v1/jobs/${id}` })).json();

  it("runs the shout graph exactly as written and keeps its checkpoints", async () => {
    const submitted = await t.request({
      method: "POST",
      url: "/api/v1/jobs",
      payload: { agent_definition: SHOUT, input_payload: { text: "hi" } },
    });
    expect(submitted.statusCode).toBe(202);
    const id = submitted.json().id;
    expect(id).toMatch(/^job_/);
    await until(async () => (await job(id)).status === "completed");
    expect(await job(id)).toMatchObject({ status: "completed", result: { text: "HI" }, attempts: 1 });
    // LangGraph checkpoints the input, then each step: __start__ and the one node.
    expect((await job(id)).checkpoints).toBe(3);
    const state = (await t.request({ method: "GET", url: `/api/v1/jobs/${id}/state` })).json();
    expect(state).toMatchObject({ checkpoints: 3, state: { input: { text: "hi" }, up: { text: "HI" } } });
  });

  it("runs a job id once: submitting it again answers the job", async () => {
    const payload = { job_id: `once-${kind}`, agent_definition: SHOUT, input_payload: { text: "a" } };
    expect((await t.request({ method: "POST", url: "/api/v1/jobs", payload })).statusCode).toBe(202);
    await until(async () => (await job(`once-${kind}`)).status === "completed");
    const again = await t.request({ method: "POST", url: "/api/v1/jobs", payload });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ status: "completed", attempts: 1 });
  });

  it("streams the job's events to a late SSE reader, from the start to the end event", async () => {
    const submitted = await t.request({
      method: "POST",
      url: "/api/v1/jobs",
      payload: { agent_definition: SHOUT, input_payload: { text: "late" } },
    });
    const id = submitted.json().id;
    await until(async () => (await job(id)).status === "completed");
    const stream = await t.request({ method: "GET", url: `/api/v1/jobs/${id}/stream` });
    expect(stream.headers["content-type"]).toContain("text/event-stream");
    const events = sseEvents(stream.body);
    expect(events.map((event) => event.event_type)).toEqual(["node_start", "node_end", "end"]);
    expect(events.map((event) => event.seq)).toEqual([1, 2, 3]);
    const resumed = await t.request({
      method: "GET",
      url: `/api/v1/jobs/${id}/stream`,
      headers: { "last-event-id": "2" },
    });
    expect(resumed.body).toContain('"event_type":"end"');
    expect(resumed.body).not.toContain("node_start");
  });

  it("refuses an all-zero trace_id, naming it, and keeps nothing of the job", async () => {
    const payload = {
      job_id: `zero-trace-${kind}`,
      trace_id: "0".repeat(32),
      agent_definition: SHOUT,
      input_payload: { text: "x" },
    };
    const refused = await t.request({ method: "POST", url: "/api/v1/jobs", payload });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.details.errors.map((e: { field: string }) => e.field)).toEqual(["trace_id"]);
    expect((await t.request({ method: "GET", url: `/api/v1/jobs/zero-trace-${kind}` })).statusCode).toBe(404);
  });

  it("runs a job whose input is JSON null", async () => {
    const echo = oneNodeGraph("null-input", {
      id: "echo",
      type: "transform",
      expression: "{'was_null': input = null}",
    });
    const submitted = await t.request({
      method: "POST",
      url: "/api/v1/jobs",
      payload: { agent_definition: echo, input_payload: null },
    });
    expect(submitted.statusCode).toBe(202);
    const id = submitted.json().id;
    await until(async () => ["completed", "failed"].includes((await job(id)).status));
    expect(await job(id)).toMatchObject({ status: "completed", result: { was_null: true } });
  });

  it("refuses an invalid graph with the field, and a viewer's submission", async () => {
    const invalid = await t.request({
      method: "POST",
      url: "/api/v1/jobs",
      payload: { agent_definition: { ...SHOUT, edges: [] }, input_payload: {} },
    });
    expect(invalid.statusCode).toBe(400);
    expect(invalid.json().error.details.errors[0].field).toMatch(/^agent_definition/);
    const viewer = await createKey(t, "viewer");
    const refused = await t.request({
      method: "POST",
      url: "/api/v1/jobs",
      key: viewer,
      payload: { agent_definition: SHOUT, input_payload: {} },
    });
    expect(refused.statusCode).toBe(403);
    expect((await t.request({ method: "GET", url: "/api/v1/jobs", key: viewer })).statusCode).toBe(200);
  });

  it("runs a CloudEvent posted to / synchronously and answers the result event", async () => {
    const response = await t.request({
      method: "POST",
      url: "/",
      headers: {
        "ce-specversion": "1.0",
        "ce-id": `evt-${kind}`,
        "ce-source": "test",
        "ce-type": "steward.job.execute",
        "content-type": "application/json",
      },
      payload: {
        job_id: `sync-${kind}`,
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
        agent_definition: SHOUT,
        input_payload: { text: "now" },
      },
    });
    expect(response.statusCode).toBe(200);
    const event = response.json();
    expect(event).toMatchObject({
      type: "agent.status.completed",
      subject: `sync-${kind}`,
      data: { job_id: `sync-${kind}`, result: { text: "NOW" } },
    });
    expect(event.traceparent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    const bad = await t.request({
      method: "POST",
      url: "/",
      headers: { "content-type": "application/json" },
      payload: { hello: "world" },
    });
    expect(bad.statusCode).toBe(400);
  });

  it.each([
    ["an HTTP node answered 404", { id: "fetch", type: "http", url: "{agent}" }],
    [
      "an expression fails on the state",
      { id: "fetch", type: "transform", expression: '$error("always fails")' },
    ],
  ])("fails at once, without a retry, when %s: the next attempt would fail the same way", async (_, node) => {
    const missing = await startMockAgent(() => ({ status: 404, body: { error: "no such thing" } }));
    try {
      const submitted = await t.request({
        method: "POST",
        url: "/api/v1/jobs",
        payload: {
          agent_definition: oneNodeGraph("doomed", {
            ...node,
            ...(node.type === "http" ? { url: missing.url } : {}),
          }),
          input_payload: {},
        },
      });
      const id = submitted.json().id;
      await until(async () => (await job(id)).status === "failed", 20_000);
      expect(await job(id)).toMatchObject({ status: "failed", attempts: 1 });
      expect(missing.requests.length).toBe(node.type === "http" ? 1 : 0);
    } finally {
      await missing.close();
    }
  });

  it("retries a failed node and ends the stream once, after the attempt that succeeded", async () => {
    const flaky = await startMockAgent((_request, index) =>
      index === 0 ? { status: 500, body: { error: "warming up" } } : { body: { ok: true } },
    );
    try {
      const submitted = await t.request({
        method: "POST",
        url: "/api/v1/jobs",
        payload: {
          agent_definition: {
            name: "flaky",
            nodes: [{ id: "fetch", type: "http", url: flaky.url }],
            edges: [
              { from: "__start__", to: "fetch" },
              { from: "fetch", to: "__end__" },
            ],
          },
          input_payload: {},
        },
      });
      const id = submitted.json().id;
      await until(async () => (await job(id)).status === "completed", 20_000);
      expect(await job(id)).toMatchObject({ status: "completed", attempts: 2, result: { status: 200 } });
      const stream = await t.request({ method: "GET", url: `/api/v1/jobs/${id}/stream` });
      const types = sseEvents(stream.body).map((event) => event.event_type);
      expect(types).toEqual([
        "node_start",
        "http_call",
        "error",
        "retrying",
        "node_start",
        "http_call",
        "node_end",
        "end",
      ]);
    } finally {
      await flaky.close();
    }
  });

  it("keeps a CloudEvent job to its organization, and names an unknown one", async () => {
    const cloudEvent = (data: Record<string, unknown>) => ({
      method: "POST" as const,
      url: "/",
      headers: { "content-type": "application/cloudevents+json" },
      payload: {
        specversion: "1.0",
        id: `evt-${Math.random()}`,
        source: "test",
        type: "steward.job.execute",
        data: {
          trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
          agent_definition: SHOUT,
          input_payload: { text: "secret of the first org" },
          ...data,
        },
      },
    });
    const jobId = `tenant-${kind}`;
    const mine = await t.request(cloudEvent({ job_id: jobId }));
    expect(mine.statusCode).toBe(200);
    const other = await createOrgWithKey(t, "developer");
    const theirs = await t.request({ ...cloudEvent({ job_id: jobId }), key: other.key });
    expect(theirs.statusCode).toBe(409);
    expect(theirs.body).not.toContain("SECRET OF THE FIRST ORG");
    // Naming another organization is for platform admins only: refused, not quietly run as their own.
    const intoMine = await t.request({
      ...cloudEvent({ job_id: `intruder-${kind}`, organization_id: "default" }),
      key: other.key,
    });
    expect(intoMine.statusCode).toBe(403);
    expect((await t.request({ method: "GET", url: `/api/v1/jobs/intruder-${kind}` })).statusCode).toBe(404);
    const unknown = await t.request(cloudEvent({ job_id: `nowhere-${kind}`, organization_id: "org_nope" }));
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().error.details.errors).toEqual([
      expect.objectContaining({ field: "data.organization_id" }),
    ]);
  });
});

describe("jobs in process, several at once", () => {
  it("runs at most STEWARD_JOBS_CONCURRENCY jobs at a time, and every job", async () => {
    let active = 0;
    let mostAtOnce = 0;
    const slow = await startMockAgent(() => {
      active += 1;
      mostAtOnce = Math.max(mostAtOnce, active);
      setTimeout(() => {
        active -= 1;
      }, 250);
      return { delayMs: 250, body: { ok: true } };
    });
    const t = await startTestSteward("embedded", {
      STEWARD_ALLOW_PRIVATE_NETWORKS: "127.0.0.1/32",
      STEWARD_JOBS_CONCURRENCY: "2",
    });
    try {
      const definition = oneNodeGraph("slow-call", { id: "call", type: "http", url: slow.url });
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) {
        const submitted = await t.request({
          method: "POST",
          url: "/api/v1/jobs",
          payload: { agent_definition: definition, input_payload: { i } },
        });
        ids.push(submitted.json().id);
      }
      const statuses = async () =>
        Promise.all(
          ids.map(
            async (id) => (await t.request({ method: "GET", url: `/api/v1/jobs/${id}` })).json().status,
          ),
        );
      await until(async () => (await statuses()).every((status) => status === "completed"), 20_000);
      expect(slow.requests).toHaveLength(6);
      expect(mostAtOnce).toBe(2);
    } finally {
      await t.close();
      await slow.close();
    }
  });
});

describe("job streams while Redis is away", () => {
  it("still sends the stored events and follows the job to its end", async () => {
    const slow = await startMockAgent(() => ({ delayMs: 1500, body: { ok: true } }));
    // Nothing listens on port 1: the live channel can never be had.
    const t = await startTestSteward("postgres", {
      STEWARD_ALLOW_PRIVATE_NETWORKS: "127.0.0.1/32",
      REDIS_URL: "redis://127.0.0.1:1",
    });
    try {
      const submitted = await t.request({
        method: "POST",
        url: "/api/v1/jobs",
        payload: {
          agent_definition: oneNodeGraph("slow-call", { id: "call", type: "http", url: slow.url }),
          input_payload: {},
        },
      });
      // Two readers, opened while the job runs: what it streams from then on comes from the
      // stored events, for the second reader as for the first.
      const read = () => t.request({ method: "GET", url: `/api/v1/jobs/${submitted.json().id}/stream` });
      const streams = await Promise.all([read(), read()]);
      for (const stream of streams) {
        const types = sseEvents(stream.body).map((event) => event.event_type);
        expect(types).toEqual(["node_start", "http_call", "node_end", "end"]);
      }
    } finally {
      await t.close();
      await slow.close();
    }
  }, 30_000);
});

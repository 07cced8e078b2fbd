import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type A2aAgent, startA2aAgent } from "../helpers/a2a-agent.js";
import { until } from "../helpers/eventually.js";
import type { ReceivedRequest } from "../helpers/received-request.js";
import { invokeEnv, registerAgent, startTestSteward, type TestSteward } from "../helpers/steward.js";

let t: TestSteward;
let agent: A2aAgent;

beforeAll(async () => {
  t = await startTestSteward("postgres", invokeEnv());
  agent = await startA2aAgent();
});
afterAll(async () => {
  await t?.close();
  await agent?.close();
});

const TOKEN = "a2a-agent-bearer-token-4242";

const register = (overrides: Record<string, unknown> = {}) =>
  registerAgent(t, agent.rpcUrl, {
    platform: "a2a",
    auth_type: "bearer_token",
    auth_config: { token: TOKEN },
    ...overrides,
  });

const invoke = (id: string, payload: Record<string, unknown>) =>
  t.request({ method: "POST", url: `/api/v1/external-agents/${id}/invoke`, payload });

const record = async (invocationId: string) =>
  (await t.request({ method: "GET", url: `/api/v1/invocations/${invocationId}` })).json();

/** The JSON-RPC requests of one invocation, in the order the agent received them. */
const rpcOf = (invocationId: string): ReceivedRequest[] =>
  agent.requests.filter((request) => String(request.body.id ?? "").startsWith(invocationId));

describe("invoking an A2A agent", () => {
  it("sends message/send with the input, the context and the lineage ids, and answers with the message", async () => {
    const id = await register();
    const context = { ticket: 42, environment: "test" };
    const response = await invoke(id, { input: "hi", context, metadata: { channel: "web" } });
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json();
    expect(body).toMatchObject({ status: "success", output: "echo: hi" });

    const [sent, ...more] = rpcOf(body.invocation_id);
    expect(more).toEqual([]);
    expect(sent?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(sent?.headers.traceparent).toBe(response.headers.traceparent);
    expect(sent?.body).toMatchObject({
      jsonrpc: "2.0",
      method: "message/send",
      params: {
        configuration: { blocking: true, acceptedOutputModes: ["text/plain", "application/json"] },
        message: {
          kind: "message",
          role: "user",
          messageId: body.invocation_id,
          parts: [
            { kind: "text", text: "hi" },
            { kind: "data", data: context },
          ],
          metadata: {
            channel: "web",
            steward: {
              invocation_id: body.invocation_id,
              trace_id: body.trace_id,
              traceparent: response.headers.traceparent,
              external_user: { id: null },
            },
          },
        },
      },
    });

    expect(await record(body.invocation_id)).toMatchObject({
      status: "success",
      response: { status: 200, body: { result: "echo: hi", a2a: { kind: "message", state: null } } },
    });
  });

  it("sends no data part when there is no context", async () => {
    const id = await register();
    const response = await invoke(id, { input: "plain" });
    expect(response.statusCode, response.body).toBe(200);
    const [sent] = rpcOf(response.json().invocation_id);
    expect(sent?.body).toMatchObject({ params: { message: { parts: [{ kind: "text", text: "plain" }] } } });
  });

  it("follows a long-running task with tasks/get and answers with its artifact", async () => {
    const id = await register();
    const response = await invoke(id, { input: "slow job" });
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json();
    expect(body.output).toBe("done: slow job");

    const [sent, ...polls] = rpcOf(body.invocation_id);
    expect(sent?.body.method).toBe("message/send");
    expect(polls.length).toBeGreaterThan(0);
    const taskId = (await record(body.invocation_id)).response.body.a2a.task_id;
    for (const poll of polls) {
      expect(poll.body).toMatchObject({ method: "tasks/get", params: { id: taskId } });
      expect(poll.headers.authorization).toBe(`Bearer ${TOKEN}`);
    }
    expect(await record(body.invocation_id)).toMatchObject({
      response: { body: { result: "done: slow job", a2a: { kind: "task", state: "completed" } } },
    });
  });
});

describe("A2A failures", () => {
  it("answers 502 UPSTREAM_ERROR naming the failed task, and records it", async () => {
    const id = await register();
    const response = await invoke(id, { input: "fail now" });
    expect(response.statusCode, response.body).toBe(502);
    const { error } = response.json();
    expect(error.code).toBe("UPSTREAM_ERROR");
    expect(error.message).toContain("A2A task failed: cannot do: fail now");
    expect(error.details.attempts).toBe(1);
    expect(await record(error.details.invocation_id)).toMatchObject({
      status: "failure",
      error: "A2A task failed: cannot do: fail now",
      response: { body: { a2a: { kind: "task", state: "failed" } } },
      cost_usd: 0,
    });
  });

  it("answers 504 when the task does not end within the agent's timeout, and cancels it", async () => {
    const id = await register({ config: { timeout_seconds: 1 } });
    const response = await invoke(id, { input: "stuck forever" });
    expect(response.statusCode, response.body).toBe(504);
    const invocationId = response.json().error.details.invocation_id;
    expect((await record(invocationId)).status).toBe("timeout");

    const sentOf = (method: string) =>
      rpcOf(invocationId).filter((request) => request.body.method === method);
    await until(() => sentOf("tasks/cancel").length > 0);
    const taskIds = sentOf("tasks/get").map((request) => (request.body.params as { id?: unknown }).id);
    expect(new Set(taskIds).size).toBe(1);
    expect(sentOf("tasks/cancel")[0]?.body.params).toEqual({ id: taskIds[0] });
  });

  it("still applies governance: a rate limit refuses the second call without reaching the agent", async () => {
    const id = await register({ rate_limit_config: { requests_per_minute: 1 } });
    expect((await invoke(id, { input: "first" })).statusCode).toBe(200);
    const before = agent.requests.length;
    const second = await invoke(id, { input: "second" });
    expect(second.statusCode).toBe(429);
    expect(second.json().error.code).toBe("RATE_LIMIT_EXCEEDED");
    expect(agent.requests.length).toBe(before);
  });
});

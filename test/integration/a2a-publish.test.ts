import { randomUUID } from "node:crypto";
import { type Message, type Part, Role, type Task, TaskState } from "@a2a-js/sdk";
import {
  type Client,
  ClientFactory,
  ClientFactoryOptions,
  DefaultAgentCardResolver,
  JsonRpcTransportFactory,
} from "@a2a-js/sdk/client";
import { JsonRpcTransportError } from "@a2a-js/sdk/errors";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../helpers/eventually.js";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import {
  createKey,
  createOrgWithKey,
  invokeEnv,
  registerAgent,
  serveOnLoopback,
  startTestSteward,
  type TestSteward,
} from "../helpers/steward.js";

/**
 * Steward's published A2A endpoint, driven by the @a2a-js/sdk client (speaking v0.3
 * through legacyCompat) against an in-process Steward on loopback. The card names
 * Steward's public URL; the client's fetch maps it onto the loopback listener, as a
 * reverse proxy would.
 */

const PUBLIC_URL = "https://steward.a2a.test";

let t: TestSteward;
let agent: MockAgent;
let base: string;
/** Every HTTP status the A2A clients saw, newest last. */
const statuses: number[] = [];

beforeAll(async () => {
  t = await startTestSteward("postgres", invokeEnv({ STEWARD_PUBLIC_URL: PUBLIC_URL }));
  agent = await startMockAgent();
  base = await serveOnLoopback(t);
});
afterAll(async () => {
  await t?.close();
  await agent?.close();
});

function stewardFetch(key: string): typeof fetch {
  return async (input, init = {}) => {
    const url = String(input instanceof Request ? input.url : input).replace(PUBLIC_URL, base);
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${key}`);
    const response = await fetch(url, { ...init, headers });
    statuses.push(response.status);
    return response;
  };
}

function clientFor(agentId: string, key = t.adminKey): Promise<Client> {
  const fetchImpl = stewardFetch(key);
  const factory = new ClientFactory(
    ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
      transports: [new JsonRpcTransportFactory({ fetchImpl, legacyCompat: { enabled: true } })],
      cardResolver: new DefaultAgentCardResolver({ fetchImpl, legacyCompat: { enabled: true } }),
    }),
  );
  // The card sits under the agent's path: without the slash it would resolve beside it.
  return factory.createFromUrl(`${base}/a2a/${agentId}/`);
}

const textPart = (value: string): Part => ({
  content: { $case: "text", value },
  metadata: undefined,
  filename: "",
  mediaType: "text/plain",
});

function send(text: string, metadata?: Record<string, string>) {
  const message: Message = {
    messageId: randomUUID(),
    contextId: "",
    taskId: "",
    role: Role.ROLE_USER,
    parts: [textPart(text)],
    metadata,
    extensions: [],
    referenceTaskIds: [],
  };
  return { tenant: "", message, configuration: undefined, metadata: undefined };
}

function textOf(parts: Part[] | undefined): string | undefined {
  const content = parts?.[0]?.content;
  return content?.$case === "text" ? content.value : undefined;
}

/** The JSON-RPC error a client call failed with (the test fails when it did not fail). */
async function rpcFailure(call: Promise<unknown>): Promise<JsonRpcTransportError> {
  const error = await call.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(JsonRpcTransportError);
  return error as JsonRpcTransportError;
}

const publish = (overrides: Record<string, unknown> = {}, key?: string) =>
  registerAgent(t, agent.url, { a2a: { published: true }, ...overrides }, key);

const rpc = (agentId: string, body: string, key = t.adminKey) =>
  t.request({
    method: "POST",
    url: `/a2a/${agentId}`,
    key,
    headers: { "content-type": "application/json" },
    payload: body,
  });

describe("a published agent", () => {
  it("serves a v0.3 card whose URL is Steward's", async () => {
    const id = await publish({ capabilities: ["summarize"] });
    const card = await t.request({ method: "GET", url: `/a2a/${id}/.well-known/agent-card.json` });
    expect(card.statusCode, card.body).toBe(200);
    expect(card.json()).toMatchObject({
      protocolVersion: "0.3.0",
      url: `${PUBLIC_URL}/a2a/${id}`,
      version: "1",
      preferredTransport: "JSONRPC",
      capabilities: { streaming: true },
      skills: [{ id: "summarize", name: "summarize" }],
      securitySchemes: { steward: { type: "http", scheme: "bearer" } },
      security: [{ steward: [] }],
    });
    const client = await clientFor(id);
    expect((await client.getAgentCard()).supportedInterfaces[0]?.url).toBe(`${PUBLIC_URL}/a2a/${id}`);
  });

  it("answers message/send with the agent's output, recording the A2A caller in lineage", async () => {
    const id = await publish();
    const client = await clientFor(id);
    const reply = (await client.sendMessage(send("hello", { user_id: "ada", session_id: "s-1" }))) as Message;
    expect(textOf(reply.parts)).toBe("echo: hello");
    const invocationId = reply.metadata?.steward?.invocation_id as string;
    const record = await t.request({ method: "GET", url: `/api/v1/invocations/${invocationId}` });
    expect(record.json()).toMatchObject({
      status: "success",
      external_user: { id: "ada" },
      external_system: { system: "a2a", session_id: "s-1" },
    });
  });

  it("streams the output with message/stream", async () => {
    const id = await publish();
    const client = await clientFor(id);
    const events = [];
    for await (const event of client.sendMessageStream(send("streamed"))) events.push(event.payload);
    expect(events).toHaveLength(1);
    const [only] = events;
    expect(only?.$case).toBe("message");
    expect(textOf((only?.value as Message | undefined)?.parts)).toBe("echo: streamed");
  });

  it("calls the agent once for a resent message", async () => {
    const id = await publish();
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id: "req-1",
      method: "message/send",
      params: {
        message: {
          kind: "message",
          messageId: randomUUID(),
          role: "user",
          parts: [{ kind: "text", text: "once" }],
        },
      },
    });
    const before = agent.requests.length;
    const [first, second] = [await rpc(id, body), await rpc(id, body)];
    expect(first.json()).toMatchObject({ jsonrpc: "2.0", id: "req-1", result: { kind: "message" } });
    expect(second.json().result).toEqual(first.json().result);
    expect(agent.requests.length - before).toBe(1);
  });
});

describe("governance over A2A", () => {
  it("refuses the call past a rate limit with HTTP 429 and -32029", async () => {
    const id = await publish({ rate_limit_config: { requests_per_minute: 1 } });
    const client = await clientFor(id);
    await client.sendMessage(send("first"));
    const error = await rpcFailure(client.sendMessage(send("second")));
    expect(statuses.at(-1)).toBe(429);
    expect(error.envelopeCode).toBe(-32029);
    expect(error.data).toMatchObject({
      reason: "rate_limited",
      retry_after_seconds: expect.any(Number),
      invocation_id: expect.stringMatching(/^inv_/),
    });
    const streamed = await rpcFailure(
      (async () => {
        for await (const _ of client.sendMessageStream(send("third")));
      })(),
    );
    expect(streamed.envelopeCode).toBe(-32029);
  });

  it("refuses over budget with -32042", async () => {
    const id = await publish({ budget_config: { cost_per_execution: 1, max_cost_per_invocation: 0.5 } });
    const error = await rpcFailure((await clientFor(id)).sendMessage(send("costly")));
    expect(error.envelopeCode).toBe(-32042);
    expect(error.data).toMatchObject({ reason: "budget_exceeded" });
  });

  it("refuses what a policy denies with -32043, A2A callers being the external system a2a", async () => {
    const org = await createOrgWithKey(t, "admin");
    const id = await publish({}, org.key);
    const policy = await t.request({
      method: "POST",
      url: "/api/v1/policies",
      key: org.key,
      payload: {
        name: "no-a2a",
        effect: "deny",
        conditions: [{ type: "external_systems", values: ["a2a"] }],
      },
    });
    expect(policy.statusCode, policy.body).toBe(201);
    const error = await rpcFailure((await clientFor(id, org.key)).sendMessage(send("hi")));
    expect(error.envelopeCode).toBe(-32043);
    expect(error.data).toMatchObject({
      reason: "policy_denied",
      matched_policies: [expect.objectContaining({ id: policy.json().id })],
    });
  });

  it("holds a call for approval as an input-required task that completes once approved", async () => {
    const org = await createOrgWithKey(t, "admin");
    const developer = await createKey(t, "developer", org.organizationId);
    const id = await publish(
      {
        approval_config: {
          triggers: { payload_patterns: ["refund"] },
          workflow: { approver_roles: ["admin"] },
        },
      },
      org.key,
    );
    const client = await clientFor(id, developer);
    const held = (await client.sendMessage(send("refund order 7"))) as Task;
    expect(TaskState[held.status?.state ?? TaskState.TASK_STATE_UNSPECIFIED]).toBe(
      "TASK_STATE_INPUT_REQUIRED",
    );
    expect(textOf(held.status?.message?.parts)).toMatch(/approv/i);
    const before = await client.getTask({ tenant: "", id: held.id, historyLength: undefined });
    expect(before.status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);

    const streamed: string[] = [];
    for await (const event of client.sendMessageStream(send("refund order 8")))
      streamed.push(String(event.payload?.$case));
    expect(streamed).toEqual(["task", "statusUpdate"]);

    const approvalId = held.metadata?.steward?.approval_id as string;
    const decided = await t.request({
      method: "POST",
      url: `/api/v1/approvals/${approvalId}/approve`,
      key: org.key,
      payload: {},
    });
    expect(decided.statusCode, decided.body).toBe(200);
    let done: Task | undefined;
    await until(async () => {
      done = await client.getTask({ tenant: "", id: held.id, historyLength: undefined });
      return done.status?.state === TaskState.TASK_STATE_COMPLETED;
    });
    expect(done?.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(textOf(done?.artifacts[0]?.parts)).toBe("echo: refund order 7");
  });
});

describe("what an A2A caller cannot reach", () => {
  it("answers 404 for an unpublished agent's card and RPC", async () => {
    const id = await registerAgent(t, agent.url);
    const card = await t.request({ method: "GET", url: `/a2a/${id}/.well-known/agent-card.json` });
    expect(card.statusCode).toBe(404);
    const call = await rpc(id, JSON.stringify({ jsonrpc: "2.0", id: 7, method: "message/send", params: {} }));
    expect(call.statusCode).toBe(404);
    expect(call.json()).toMatchObject({ jsonrpc: "2.0", id: 7, error: { code: -32044 } });
  });

  it("answers 404 to another organization's key", async () => {
    const id = await publish();
    const other = await createOrgWithKey(t, "admin");
    const card = await t.request({
      method: "GET",
      url: `/a2a/${id}/.well-known/agent-card.json`,
      key: other.key,
    });
    expect(card.statusCode).toBe(404);
    expect((await rpc(id, "{}", other.key)).statusCode).toBe(404);
  });

  it("requires a Steward credential", async () => {
    const id = await publish();
    expect((await rpc(id, "{}", "")).statusCode).toBe(401);
  });

  it("does not show another caller's task", async () => {
    const id = await publish();
    const reply = (await (await clientFor(id)).sendMessage(send("mine"))) as Message;
    const invocationId = reply.metadata?.steward?.invocation_id as string;
    const stranger = await createKey(t, "developer");
    const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tasks/get", params: { id: invocationId } });
    expect((await rpc(id, body, stranger)).json().error.code).toBe(-32001);
    expect((await rpc(id, body)).json().result).toMatchObject({
      id: invocationId,
      status: { state: "completed" },
    });
  });
});

describe("JSON-RPC errors", () => {
  it("answers bad JSON, bad envelopes, unknown methods and bad params with the spec's codes", async () => {
    const id = await publish();
    const cases: Array<[string, number, unknown]> = [
      ["{not json", -32700, null],
      [JSON.stringify({ jsonrpc: "1.0", id: "a", method: "message/send" }), -32600, "a"],
      [JSON.stringify([{ jsonrpc: "2.0", id: 1, method: "message/send" }]), -32600, null],
      [JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tasks/list" }), -32601, 2],
      [
        JSON.stringify({
          jsonrpc: "2.0",
          id: 3,
          method: "message/send",
          params: { message: { role: "user" } },
        }),
        -32602,
        3,
      ],
      [JSON.stringify({ jsonrpc: "2.0", id: 4, method: "tasks/get", params: { id: "inv_nope" } }), -32001, 4],
    ];
    for (const [body, code, rpcId] of cases) {
      const response = await rpc(id, body);
      expect(response.statusCode, body).toBe(200);
      expect(response.json(), body).toMatchObject({ jsonrpc: "2.0", id: rpcId, error: { code } });
    }
    const missing = await rpc(
      id,
      JSON.stringify({
        jsonrpc: "2.0",
        id: 5,
        method: "message/send",
        params: { message: { role: "user" } },
      }),
    );
    expect(missing.json().error.data).toEqual({ field: "params.message.messageId" });
  });
});

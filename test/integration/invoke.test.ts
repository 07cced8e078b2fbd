import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import {
  createKey,
  createOrgWithKey,
  invokeEnv,
  registerAgent,
  startTestSteward,
  type TestSteward,
} from "../helpers/steward.js";

let t: TestSteward;
let agent: MockAgent;

beforeAll(async () => {
  t = await startTestSteward("postgres", invokeEnv());
  agent = await startMockAgent();
});
afterAll(async () => {
  await t?.close();
  await agent?.close();
});

const register = (overrides: Record<string, unknown> = {}, key?: string) =>
  registerAgent(
    t,
    agent.url,
    {
      auth_type: "bearer_token",
      auth_config: { token: "agent-bearer-token-7777" },
      budget_config: { cost_per_execution: 0.25 },
      ...overrides,
    },
    key,
  );

const invoke = (id: string, payload: unknown, headers: Record<string, string> = {}, key?: string) =>
  t.request({
    method: "POST",
    url: `/api/v1/external-agents/${id}/invoke`,
    payload: payload as object,
    headers,
    key,
  });

describe("a governed call", () => {
  it("reaches the agent with credentials, trace and identity, and answers with its output", async () => {
    const id = await register();
    const incomingTrace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const response = await invoke(
      id,
      { input: "summarise ticket 42", context: { ticket: 42 }, metadata: { channel: "web" } },
      {
        traceparent: incomingTrace,
        "x-external-user-id": "u-1",
        "x-external-user-email": "ada@example.org",
        "x-external-system": "helpdesk",
        "x-external-context": '{"tenant":"acme"}',
      },
    );
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json();
    expect(body).toMatchObject({
      invocation_id: expect.stringMatching(/^inv_/),
      trace_id: "0af7651916cd43dd8448eb211c80319c",
      status: "success",
      output: "echo: summarise ticket 42",
      cost_usd: 0.25,
      metadata: {},
    });
    expect(response.headers["x-invocation-id"]).toBe(body.invocation_id);
    expect(response.headers.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);

    const received = agent.requests.at(-1);
    expect(received?.headers.authorization).toBe("Bearer agent-bearer-token-7777");
    expect(received?.headers.traceparent).toBe(response.headers.traceparent);
    expect(received?.body).toEqual({
      input: "summarise ticket 42",
      context: { ticket: 42 },
      metadata: { channel: "web" },
      invocation_id: body.invocation_id,
      trace_id: body.trace_id,
      external_user: { id: "u-1", email: "ada@example.org", name: null, role: null },
    });

    const record = (
      await t.request({ method: "GET", url: `/api/v1/invocations/${body.invocation_id}` })
    ).json();
    expect(record).toMatchObject({
      status: "success",
      external_user: { id: "u-1", email: "ada@example.org" },
      external_system: { system: "helpdesk", context: { tenant: "acme" } },
      credential: {
        type: "api_key",
        api_key_prefix: expect.stringMatching(/^sk_live_/),
        organization_id: "default",
      },
      agent: { id, endpoint: agent.url, version: 1 },
      trace: { parent_span_id: "b7ad6b7169203331" },
      response: { status: 200 },
      cost_usd: 0.25,
      chain: { seq: expect.any(Number), record_hash: expect.stringMatching(/^[0-9a-f]{64}$/) },
    });
  });

  it("takes the agent's reported cost and its result field", async () => {
    const id = await register();
    agent.answer(() => ({
      body: { result: { summary: "done" }, usage: { cost_usd: 0.5 }, metadata: { model: "m1" } },
    }));
    const response = await invoke(id, { input: "go" });
    agent.answer((request) => ({ body: { result: `echo: ${String(request.body.input)}` } }));
    expect(response.json()).toMatchObject({
      output: { summary: "done" },
      cost_usd: 0.5,
      metadata: { model: "m1" },
    });
    const budget = (await t.request({ method: "GET", url: `/api/v1/external-agents/${id}/budget` })).json();
    expect(budget.monthly).toMatchObject({ cost_used: 0.5, reserved: 0, invocations: 1 });
  });

  it("believes an agent's reported cost only up to the per-call cap", async () => {
    const id = await register({ budget_config: { cost_per_execution: 0.5, max_cost_per_invocation: 2 } });
    agent.answer(() => ({ body: { result: "done", cost_usd: 1e14 } }));
    const response = await invoke(id, { input: "go" });
    agent.answer((request) => ({ body: { result: `echo: ${String(request.body.input)}` } }));
    expect(response.statusCode).toBe(200);
    expect(response.json().cost_usd).toBe(2);
    const record = (
      await t.request({ method: "GET", url: `/api/v1/invocations/${response.json().invocation_id}` })
    ).json();
    expect(record.degraded_reasons).toContain("reported_cost_capped");
  });

  it("returns the first result for a repeated Idempotency-Key, without calling again", async () => {
    const id = await register();
    const before = agent.requests.length;
    const first = await invoke(id, { input: "once" }, { "idempotency-key": "key-123" });
    const second = await invoke(id, { input: "once" }, { "idempotency-key": "key-123" });
    expect(second.statusCode).toBe(200);
    expect(second.json()).toEqual(first.json());
    expect(agent.requests.length - before).toBe(1);

    const other = await register();
    const elsewhere = await invoke(other, { input: "once" }, { "idempotency-key": "key-123" });
    expect(elsewhere.statusCode).toBe(409);
    // The key is bound to the request and the credential that made it.
    const changed = await invoke(id, { input: "twice" }, { "idempotency-key": "key-123" });
    expect(changed.statusCode).toBe(409);
    const developer = await createKey(t, "developer");
    const anotherCaller = await invoke(id, { input: "once" }, { "idempotency-key": "key-123" }, developer);
    expect(anotherCaller.statusCode).toBe(409);
    expect(anotherCaller.body).not.toContain("echo");
  });
});

describe("awkward content", () => {
  it("stores NUL, lone surrogates and extreme numbers so the lineage chain still verifies", async () => {
    const org = await createOrgWithKey(t, "admin");
    const id = await register({}, org.key);
    agent.answer(() => ({
      body: {
        result: {
          emoji: "😀",
          nul: "a\u0000b",
          lone: "x\ud800y",
          big: 2 ** 60,
          tiny: 5e-324,
          zero: -0,
        },
        nested: [[1.5, true, null, { "": "empty key" }]],
      },
    }));
    const response = await invoke(
      id,
      { input: "nul \u0000 and \udc00 lone", context: { n: 1e21 } },
      {},
      org.key,
    );
    agent.answer((request) => ({ body: { result: `echo: ${String(request.body.input)}` } }));
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json().output).toEqual({
      emoji: "😀",
      nul: "a\uFFFDb",
      lone: "x\uFFFDy",
      big: 2 ** 60,
      tiny: 5e-324,
      zero: 0,
    });
    const verified = await t.request({ method: "GET", url: "/api/v1/lineage/verify", key: org.key });
    expect(verified.json()).toEqual({ valid: true, checked: 1, first_broken: null });
  });
});

describe("GDPR", () => {
  it("finds a person's records whatever the case of the e-mail address asked for", async () => {
    const org = await createOrgWithKey(t, "admin");
    const id = await register({}, org.key);
    await invoke(id, { input: "hi" }, { "x-external-user-email": "Grace.Hopper@Example.org" }, org.key);
    const erased = await t.request({
      method: "DELETE",
      url: "/api/v1/lineage/users/grace.hopper@example.org",
      key: org.key,
    });
    expect(erased.json()).toEqual({ redacted: 1 });
  });
});

describe("refusals before any call", () => {
  it("answers 400 AGENT_NOT_ACTIVE for an inactive or deleted agent", async () => {
    const inactive = await register({ status: "inactive" });
    const response = await invoke(inactive, { input: "x" });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.code).toBe("AGENT_NOT_ACTIVE");

    const deleted = await register();
    await t.request({ method: "DELETE", url: `/api/v1/external-agents/${deleted}` });
    expect((await invoke(deleted, { input: "x" })).json().error.code).toBe("AGENT_NOT_ACTIVE");
  });

  it("answers 404 for another organization's agent, 403 without the permission", async () => {
    const other = await createOrgWithKey(t, "admin");
    const theirs = await register({}, other.key);
    expect((await invoke(theirs, { input: "x" })).statusCode).toBe(404);
    const viewer = await createOrgWithKey(t, "viewer");
    expect((await invoke(theirs, { input: "x" }, {}, viewer.key)).statusCode).toBe(403);
  });

  it("stores an X-External-Context holding NUL and lone surrogates", async () => {
    const id = await register();
    const response = await invoke(
      id,
      { input: "x" },
      { "x-external-context": '{"a":"\\u0000","b":"\\ud800"}' },
    );
    expect(response.statusCode, response.body).toBe(200);
  });

  it("refuses an empty input and a malformed X-External-Context", async () => {
    const id = await register();
    const empty = await invoke(id, { input: "" });
    expect(empty.statusCode).toBe(400);
    expect(empty.json().error.details.errors[0].field).toBe("input");
    const context = await invoke(id, { input: "x" }, { "x-external-context": "{not json" });
    expect(context.statusCode).toBe(400);
    expect(context.json().error.details.errors[0].field).toBe("x-external-context");
  });
});

describe("agent failures", () => {
  it("answers 502 UPSTREAM_ERROR after three attempts at a failing agent", async () => {
    const id = await register();
    const before = agent.requests.length;
    agent.answer(() => ({ status: 503, body: { error: "down" } }));
    const response = await invoke(id, { input: "x" });
    agent.answer((request) => ({ body: { result: `echo: ${String(request.body.input)}` } }));
    expect(response.statusCode).toBe(502);
    expect(response.json().error).toMatchObject({
      code: "UPSTREAM_ERROR",
      details: { invocation_id: expect.stringMatching(/^inv_/), upstream_status: 503, attempts: 3 },
    });
    expect(agent.requests.length - before).toBe(3);
  });

  it("answers 504 UPSTREAM_TIMEOUT when the agent does not answer within its timeout", async () => {
    const id = await register({ config: { timeout_seconds: 1 } });
    agent.answer(() => ({ hang: true }));
    const response = await invoke(id, { input: "x" });
    agent.answer((request) => ({ body: { result: `echo: ${String(request.body.input)}` } }));
    expect(response.statusCode).toBe(504);
    const record = (
      await t.request({
        method: "GET",
        url: `/api/v1/invocations/${response.json().error.details.invocation_id}`,
      })
    ).json();
    expect(record.status).toBe("timeout");
    expect(record.cost_usd).toBe(0);
  });
});

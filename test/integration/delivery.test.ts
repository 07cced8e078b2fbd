import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MockAgent, type MockHandler, startMockAgent } from "../helpers/mock-agent.js";
import { invokeEnv, startTestSteward, type TestSteward } from "../helpers/steward.js";

/** Platforms are stood in for by local servers that answer as each test says. */

const BOT_TOKEN = "4242:telegram-CANARY-bot-token";
let t: TestSteward;
let agent: MockAgent;
const platforms: MockAgent[] = [];

beforeAll(async () => {
  agent = await startMockAgent();
  const telegram = await platform(() => ({ status: 500, body: { ok: false } }));
  t = await startTestSteward(
    "postgres",
    invokeEnv({
      STEWARD_DELIVERY_RETRY_DELAYS: "100ms,100ms",
      STEWARD_DELIVERY_TIMEOUT_MS: "1000",
      STEWARD_TELEGRAM_API_URL: telegram.url.replace(/\/invoke$/, ""),
    }),
  );
});
afterAll(async () => {
  await t?.close();
  await agent?.close();
  for (const server of platforms) await server.close();
});

async function platform(handler: MockHandler): Promise<MockAgent> {
  const server = await startMockAgent(handler);
  platforms.push(server);
  return server;
}

async function register(
  platformConfig: Record<string, unknown>,
  name = `agent-${Math.random().toString(36).slice(2, 9)}`,
  kind = "slack",
) {
  const response = await t.request({
    method: "POST",
    url: "/api/v1/external-agents",
    payload: { name, platform: kind, webhook_url: agent.url, platform_config: platformConfig },
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json().id as string;
}

async function invoke(id: string): Promise<string> {
  const response = await t.request({
    method: "POST",
    url: `/api/v1/external-agents/${id}/invoke`,
    payload: { input: "hi" },
  });
  expect(response.statusCode, response.body).toBe(200);
  return response.json().invocation_id as string;
}

async function deliveryOf(invocationId: string, until: (delivery: Record<string, unknown>) => boolean) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const list = (await t.request({ method: "GET", url: "/api/v1/deliveries?limit=100" })).json();
    const summary = list.items.find(
      (item: { invocation_id: string; target: string }) =>
        item.invocation_id === invocationId && item.target === "platform",
    );
    if (summary) {
      const delivery = (await t.request({ method: "GET", url: `/api/v1/deliveries/${summary.id}` })).json();
      if (until(delivery)) return delivery;
    }
    if (Date.now() > deadline)
      throw new Error(`delivery of ${invocationId} did not settle: ${JSON.stringify(summary)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const settled = (delivery: Record<string, unknown>) =>
  delivery.status === "delivered" || delivery.status === "dead";

describe("delivery to a platform", () => {
  it("retries a platform that answers 500 twice, with the same delivery id, and records three attempts", async () => {
    const slack = await platform((_request, index) =>
      index < 2 ? { status: 500, body: {} } : { status: 200, body: "ok" },
    );
    const id = await register({ webhook_url: slack.url, channel: "#ops" });
    const invocationId = await invoke(id);
    const delivery = await deliveryOf(invocationId, settled);
    expect(delivery).toMatchObject({ status: "delivered", last_status_code: 200 });
    expect(delivery.attempt_log.map((attempt: { outcome: string }) => attempt.outcome)).toEqual([
      "retry",
      "retry",
      "delivered",
    ]);
    expect(slack.requests).toHaveLength(3);
    expect(new Set(slack.requests.map((request) => request.headers["x-steward-delivery-id"]))).toEqual(
      new Set([delivery.id]),
    );
    const text = JSON.stringify(slack.requests[2]?.body);
    expect(text).toContain(invocationId);
    const record = (await t.request({ method: "GET", url: `/api/v1/invocations/${invocationId}` })).json();
    expect(record).toMatchObject({ webhook_delivery_status: "delivered", webhook_delivery_error: null });
    expect(record.webhook_delivered_at).not.toBeNull();
  });

  it("delivers to Teams and to a custom HTTP endpoint, whose webhook URLs are stored sealed", async () => {
    const teams = await platform(() => ({ status: 202, body: {} }));
    const teamsId = await register(
      { tenant_id: "t", channel_id: "c", webhook_url: teams.url },
      undefined,
      "teams",
    );
    expect((await deliveryOf(await invoke(teamsId), settled)).status).toBe("delivered");
    expect(JSON.stringify(teams.requests[0]?.body)).toContain("application/vnd.microsoft.card.adaptive");

    const custom = await platform(() => ({ status: 200, body: {} }));
    const customId = await register({ webhook_url: custom.url }, undefined, "custom_http");
    const invocationId = await invoke(customId);
    expect((await deliveryOf(invocationId, settled)).status).toBe("delivered");
    expect(custom.requests[0]?.body).toMatchObject({ data: { invocation_id: invocationId } });
  });

  it("delivers with an agent's new platform settings as soon as they change", async () => {
    const before = await platform(() => ({ status: 200, body: "ok" }));
    const after = await platform(() => ({ status: 200, body: "ok" }));
    const id = await register({ webhook_url: before.url, channel: "#ops" });
    expect((await deliveryOf(await invoke(id), settled)).status).toBe("delivered");
    const patched = await t.request({
      method: "PATCH",
      url: `/api/v1/external-agents/${id}`,
      payload: { platform_config: { webhook_url: after.url, channel: "#ops" } },
    });
    expect(patched.statusCode, patched.body).toBe(200);
    expect((await deliveryOf(await invoke(id), settled)).status).toBe("delivered");
    expect(before.requests).toHaveLength(1);
    expect(after.requests).toHaveLength(1);
  });

  it("waits at least the platform's Retry-After", async () => {
    const slack = await platform((_request, index) =>
      index === 0 ? { status: 429, headers: { "retry-after": "2" }, body: {} } : { status: 200, body: "ok" },
    );
    const id = await register({ webhook_url: slack.url, channel: "#ops" });
    const delivery = await deliveryOf(await invoke(id), settled);
    expect(delivery.status).toBe("delivered");
    const [first, second] = delivery.attempt_log as Array<{ started_at: string }>;
    expect(Date.parse(second?.started_at ?? "") - Date.parse(first?.started_at ?? "")).toBeGreaterThanOrEqual(
      2000,
    );
  });

  it("does not follow a redirect, and gives up on a final 4xx after one attempt", async () => {
    const canary = await platform(() => ({ status: 200, body: "ok" }));
    const redirecting = await platform(() => ({ status: 302, headers: { location: canary.url }, body: {} }));
    const redirected = await deliveryOf(
      await invoke(await register({ webhook_url: redirecting.url, channel: "#a" })),
      settled,
    );
    expect(redirected.status).toBe("dead");
    expect(canary.requests).toHaveLength(0);

    const gone = await platform(() => ({ status: 404, body: { error: "no such webhook" } }));
    const final = await deliveryOf(
      await invoke(await register({ webhook_url: gone.url, channel: "#a" })),
      settled,
    );
    expect(final).toMatchObject({ status: "dead", last_status_code: 404 });
    expect(final.attempt_log).toHaveLength(1);
  });

  it("delivers to a healthy platform while another never answers", async () => {
    const hanging = await platform(() => ({ hang: true }));
    const healthy = await platform(() => ({ status: 200, body: "ok" }));
    const slow = await register({ webhook_url: hanging.url, channel: "#slow" });
    const fast = await register({ webhook_url: healthy.url, channel: "#fast" });
    const slowCalls: string[] = [];
    for (let i = 0; i < 6; i++) slowCalls.push(await invoke(slow));
    const delivery = await deliveryOf(await invoke(fast), (d) => d.status === "delivered");
    // Queued behind the hanging platform, it could only go once an attempt there had
    // ended (its timeout is 1 s): it went while every one of them was still hanging.
    const slowAttemptEnds: number[] = [];
    for (const invocationId of slowCalls) {
      const { attempt_log } = await deliveryOf(invocationId, () => true);
      for (const attempt of attempt_log as { started_at: string; duration_ms: number }[])
        slowAttemptEnds.push(Date.parse(attempt.started_at) + attempt.duration_ms);
    }
    expect(Math.min(Infinity, ...slowAttemptEnds)).toBeGreaterThan(Date.parse(delivery.delivered_at));
  });

  it("keeps credentials out of the attempt log and the logs", async () => {
    const id = await register({ bot_token: BOT_TOKEN, chat_id: 42 }, undefined, "telegram");
    const delivery = await deliveryOf(await invoke(id), settled);
    expect(delivery.status).toBe("dead");
    expect(JSON.stringify(delivery)).not.toContain("CANARY");
    expect(t.logs.join("\n")).not.toContain("CANARY");
  });

  it("replays dead deliveries of an agent on request", async () => {
    let healthy = false;
    const flaky = await platform(() => (healthy ? { status: 200, body: "ok" } : { status: 503, body: {} }));
    const id = await register({ webhook_url: flaky.url, channel: "#ops" });
    const dead = await deliveryOf(await invoke(id), settled);
    expect(dead.status).toBe("dead");
    healthy = true;
    const replay = await t.request({
      method: "POST",
      url: `/api/v1/external-agents/${id}/deliveries/replay?status=dead`,
    });
    expect(replay.statusCode).toBe(202);
    expect(replay.json()).toEqual({ requeued: 1 });
    const delivered = await deliveryOf(dead.invocation_id, (d) => d.status === "delivered");
    expect(delivered.attempt_log.map((attempt: { attempt: number }) => attempt.attempt)).toEqual([
      1, 2, 3, 4,
    ]);
  });
});

describe("events to webhook subscriptions", () => {
  it("signs and delivers invocation.completed and rate_limit.exceeded events", async () => {
    const receiver = await platform(() => ({ status: 204 }));
    const created = await t.request({
      method: "POST",
      url: "/api/v1/webhooks",
      payload: {
        url: receiver.url,
        events: ["external_agent.invocation.completed", "external_agent.rate_limit.exceeded"],
      },
    });
    expect(created.statusCode, created.body).toBe(201);
    const { secret } = created.json();
    const response = await t.request({
      method: "POST",
      url: "/api/v1/external-agents",
      payload: {
        name: "events-agent",
        platform: "custom_http",
        webhook_url: agent.url,
        rate_limit_config: { requests_per_minute: 1 },
      },
    });
    const id = response.json().id as string;
    const invocationId = await invoke(id);
    const refused = await t.request({
      method: "POST",
      url: `/api/v1/external-agents/${id}/invoke`,
      payload: { input: "again" },
    });
    expect(refused.statusCode).toBe(429);

    const deadline = Date.now() + 10_000;
    while (receiver.requests.length < 2 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    const webhook = new Webhook(secret);
    const events = receiver.requests.map((request) =>
      webhook.verify(request.rawBody, request.headers as Record<string, string>),
    ) as Array<{ type: string; data: Record<string, unknown> }>;
    expect(events.map((event) => event.type).sort()).toEqual([
      "external_agent.invocation.completed",
      "external_agent.rate_limit.exceeded",
    ]);
    const completed = events.find((event) => event.type === "external_agent.invocation.completed");
    expect(completed?.data).toMatchObject({
      invocation_id: invocationId,
      external_agent_id: id,
      status: "success",
    });
    const limited = events.find((event) => event.type === "external_agent.rate_limit.exceeded");
    expect(limited?.data).toMatchObject({ external_agent_id: id, window: "minute", limit: 1 });
    for (const request of receiver.requests) {
      expect(request.headers["x-steward-delivery-id"]).toBe(request.headers["webhook-id"]);
    }
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import { invokeEnv, startTestSteward, type TestSteward } from "../helpers/steward.js";

/** An endpoint that keeps failing is paused, the organization is told, and a redelivery resumes it. */

let t: TestSteward;
let agent: MockAgent;
let platform: MockAgent;
let healthy = false;

beforeAll(async () => {
  agent = await startMockAgent();
  platform = await startMockAgent(() => (healthy ? { status: 200, body: "ok" } : { status: 503, body: {} }));
  // Any failure after the first one pauses: the streak is older than 0 ms.
  t = await startTestSteward(
    "postgres",
    invokeEnv({ STEWARD_DELIVERY_RETRY_DELAYS: "50ms", STEWARD_DELIVERY_PAUSE_AFTER: "0ms" }),
  );
});
afterAll(async () => {
  await t?.close();
  await agent?.close();
  await platform?.close();
});

async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("a failing endpoint", () => {
  it("is paused with an audit event, holds new deliveries, and resumes on redelivery", async () => {
    const registered = await t.request({
      method: "POST",
      url: "/api/v1/external-agents",
      payload: {
        name: "paused",
        platform: "slack",
        webhook_url: agent.url,
        platform_config: { webhook_url: platform.url, channel: "#x" },
      },
    });
    const id = registered.json().id as string;
    const invoke = () =>
      t.request({ method: "POST", url: `/api/v1/external-agents/${id}/invoke`, payload: { input: "x" } });
    const list = async () =>
      (await t.request({ method: "GET", url: `/api/v1/deliveries?external_agent_id=${id}` })).json()
        .items as Array<{
        id: string;
        status: string;
      }>;

    await invoke();
    const [dead] = await waitFor(list, (items) => items[0]?.status === "dead");
    expect(dead?.status).toBe("dead");
    const { rows } = await t.steward.database.pool.query(
      "SELECT action FROM audit_events WHERE resource_id = $1 AND action = 'delivery.endpoint_paused'",
      [id],
    );
    expect(rows).toHaveLength(1);

    // While paused, a new delivery waits instead of burning its attempts: a claim parks it.
    healthy = true;
    const before = platform.requests.length;
    await invoke();
    const parked = async () =>
      (
        await t.steward.database.pool.query(
          "SELECT id FROM deliveries WHERE external_agent_id = $1 AND parked AND status = 'pending'",
          [id],
        )
      ).rows as Array<{ id: string }>;
    expect(await waitFor(parked, (rows) => rows.length === 1)).toHaveLength(1);
    const waiting = await list();
    expect(waiting.find((item) => item.id !== dead?.id)?.status).toBe("pending");
    expect(platform.requests.length).toBe(before);

    const redeliver = await t.request({ method: "POST", url: `/api/v1/deliveries/${dead?.id}/redeliver` });
    expect(redeliver.statusCode).toBe(202);
    const after = await waitFor(list, (items) => items.every((item) => item.status === "delivered"));
    expect(after.map((item) => item.status)).toEqual(["delivered", "delivered"]);
  });
});

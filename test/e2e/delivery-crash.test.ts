import { afterAll, describe, expect, it } from "vitest";
import { until } from "../helpers/eventually.js";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import { freePort } from "../helpers/ports.js";
import { type StewardProcess, spawnSteward, stewardEnvironment } from "../helpers/steward-process.js";

/**
 * Steward killed with SIGKILL while deliveries are in flight, then started again: every
 * delivery arrives, and each one's attempt log holds exactly one successful attempt.
 */

const { adminKey: ADMIN_KEY, env } = stewardEnvironment({ STEWARD_DELIVERY_TIMEOUT_MS: "1000" });

async function startSteward(port: number): Promise<StewardProcess> {
  const steward = spawnSteward("serve", { ...env, PORT: String(port) });
  await steward.waitForOutput(/Server listening/);
  return steward;
}

describe("deliveries across a crash", () => {
  const servers: MockAgent[] = [];
  const processes: StewardProcess[] = [];
  afterAll(async () => {
    for (const steward of processes) await steward.kill("SIGKILL");
    for (const server of servers) await server.close();
  });

  it("delivers every pending delivery after SIGKILL and restart, once per attempt log", async () => {
    const agent = await startMockAgent();
    let platformUp = false;
    // While the first process runs, the platform takes requests and never answers them.
    const platform = await startMockAgent(() => (platformUp ? { status: 200, body: "ok" } : { hang: true }));
    servers.push(agent, platform);
    const port = await freePort();
    const base = `http://127.0.0.1:${port}/api/v1`;
    const headers = { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" };

    const first = await startSteward(port);
    processes.push(first);
    const registered = await fetch(`${base}/external-agents`, {
      method: "POST",
      headers,
      body: JSON.stringify({
        name: "crash-test",
        platform: "slack",
        webhook_url: agent.url,
        platform_config: { webhook_url: platform.url, channel: "#ops" },
      }),
    });
    const { id } = (await registered.json()) as { id: string };
    const invocations: string[] = [];
    for (let i = 0; i < 5; i++) {
      const response = await fetch(`${base}/external-agents/${id}/invoke`, {
        method: "POST",
        headers,
        body: JSON.stringify({ input: `call ${i}` }),
      });
      expect(response.status).toBe(200);
      invocations.push(((await response.json()) as { invocation_id: string }).invocation_id);
    }
    // Wait until the first process is in the middle of delivering, then kill it.
    await until(() => platform.requests.length > 0, 30_000);
    await first.kill("SIGKILL");

    platformUp = true;
    const second = await startSteward(port);
    processes.push(second);
    const deadline = Date.now() + 30_000;
    let delivered: Array<{ id: string; invocation_id: string; status: string }> = [];
    while (Date.now() < deadline) {
      const list = (await (await fetch(`${base}/deliveries?limit=100`, { headers })).json()) as {
        items: typeof delivered;
      };
      delivered = list.items.filter((item) => item.status === "delivered");
      if (delivered.length === invocations.length) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(delivered.map((item) => item.invocation_id).sort()).toEqual([...invocations].sort());
    for (const delivery of delivered) {
      const detail = (await (await fetch(`${base}/deliveries/${delivery.id}`, { headers })).json()) as {
        attempt_log: Array<{ outcome: string }>;
      };
      expect(detail.attempt_log.filter((attempt) => attempt.outcome === "delivered")).toHaveLength(1);
      // Each was received with its own id; a request the dead process had open may be seen twice.
      expect(
        platform.requests.some((request) => request.headers["x-steward-delivery-id"] === delivery.id),
      ).toBe(true);
    }
    await second.kill("SIGTERM");
  }, 120_000);
});

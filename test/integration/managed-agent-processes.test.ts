import { fileURLToPath } from "node:url";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../helpers/eventually.js";
import { startMockAgent } from "../helpers/mock-agent.js";
import { freePort } from "../helpers/ports.js";
import { TEST_NATS_URL } from "../helpers/services.js";
import { registerAgent, startTestSteward, type TestSteward } from "../helpers/steward.js";

const EXAMPLES = fileURLToPath(new URL("../../examples/agents/", import.meta.url));

/**
 * The example package run by Steward's process manager against the real NATS: it
 * heartbeats over NATS, receives config changes there, is restarted after SIGKILL and
 * ends `failed` after a crash loop.
 */
describe("managed agent processes over NATS", () => {
  let t: TestSteward;
  let nats: NatsConnection;
  let agentId: string;

  beforeAll(async () => {
    nats = await connect({ servers: TEST_NATS_URL });
    const port = await freePort();
    t = await startTestSteward("postgres", {
      PORT: String(port),
      NATS_URL: TEST_NATS_URL,
      STEWARD_AGENTS_DIR: EXAMPLES,
      STEWARD_AGENTS_WATCH: "false",
      STEWARD_AGENTS_RESTART_DELAY_MS: "100",
      STEWARD_AGENTS_MAX_RESTARTS: "2",
      STEWARD_AGENTS_STOP_GRACE_MS: "2000",
      // The crash-loop alert's channel below is a local stand-in.
      STEWARD_ALLOW_PRIVATE_NETWORKS: "127.0.0.1/32",
    });
    await t.steward.server.listen({ host: "127.0.0.1", port });
    const discovered = (await t.request({ method: "GET", url: "/api/v1/agents?name=log-sentinel" })).json();
    expect(discovered.items).toEqual([
      expect.objectContaining({ state: "discovered", managed_process: true }),
    ]);
    agentId = discovered.items[0].id;
    const registered = await t.request({
      method: "POST",
      url: "/api/v1/agents",
      payload: { agent_id: agentId },
    });
    expect(registered.statusCode).toBe(201);
  });
  afterAll(async () => {
    await t?.close();
    await nats?.drain();
  });

  const get = async (path: string) =>
    (await t.request({ method: "GET", url: `/api/v1/agents/${agentId}${path}` })).json();
  const pid = async (): Promise<number | null> => (await get("/process")).process?.pid ?? null;
  const logged = async (text: string) => (await get(`/logs?q=${encodeURIComponent(text)}`)).items.length > 0;
  /** Kills the agent's whole process group, as a crash would take it down. */
  const crash = (processId: number) => process.kill(-processId, "SIGKILL");

  it("starts the package; it heartbeats over NATS and Steward sees it healthy", async () => {
    const beats: unknown[] = [];
    const subscription = nats.subscribe(`agents.${agentId}.heartbeat`, {
      callback: (_error, message) => {
        beats.push(message.json());
      },
    });
    const started = await t.request({ method: "POST", url: `/api/v1/agents/${agentId}/start` });
    expect(started.statusCode).toBe(200);
    expect(started.json()).toMatchObject({
      agent: { state: "running" },
      process: { pid: expect.any(Number) },
    });

    await until(async () => beats.length > 0 && (await get("/health")).health === "healthy", 20_000);
    subscription.unsubscribe();
    expect(beats[0]).toMatchObject({ agent_id: agentId, status: "running", uptime: expect.any(Number) });
    expect(await get("/health")).toMatchObject({
      state: "running",
      health: "healthy",
      last_heartbeat_at: expect.any(String),
    });
    await until(() => logged("process started"));
    expect(await logged("process started")).toBe(true);
  });

  it("pushes a config change to the running agent over NATS and keeps it in the history", async () => {
    const controls: unknown[] = [];
    const subscription = nats.subscribe(`agents.${agentId}.control`, {
      callback: (_error, message) => {
        controls.push(message.json());
      },
    });
    await nats.flush();
    const config = { pattern: "BOOM", severity: "error", report_every_s: 1 };
    const put = await t.request({ method: "PUT", url: `/api/v1/agents/${agentId}/config`, payload: config });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toMatchObject({ version: 1, config, sources: { pattern: "stored" } });

    await until(() => logged("applied config version 1"), 20_000);
    subscription.unsubscribe();
    expect(controls).toEqual([{ type: "config", version: 1, config }]);
    const history = await get("/config/history");
    expect(history.items).toEqual([
      expect.objectContaining({ version: 1, config, author: expect.objectContaining({ type: "api_key" }) }),
    ]);
  });

  it("restarts the agent after SIGKILL, and marks it failed after repeated crashes", async () => {
    // A crash_loop rule fires nothing itself: it sends Steward's own crash-loop alerts to a channel.
    const channel = await startMockAgent(() => ({ status: 200, body: {} }));
    const channelId = await registerAgent(t, channel.url, { platform_config: { webhook_url: channel.url } });
    const rule = await t.request({
      method: "POST",
      url: "/api/v1/agents/alert-rules",
      payload: {
        name: "crashes",
        kind: "crash_loop",
        agent_id: agentId,
        notify_external_agent_id: channelId,
      },
    });
    expect(rule.statusCode, rule.body).toBe(201);
    const first = (await pid()) as number;
    crash(first);
    await until(async () => {
      const next = await pid();
      return next !== null && next !== first;
    }, 20_000);
    const second = (await pid()) as number;
    expect(second).not.toBe(first);
    expect((await get("/process")).process.restarts).toBe(1);
    expect(await get("")).toMatchObject({ state: "running" });
    // Output and exits are written to the log in batches: wait for the crash's line.
    await until(() => logged("signal SIGKILL"));
    expect(await logged("signal SIGKILL")).toBe(true);

    crash(second);
    await until(async () => {
      const next = await pid();
      return next !== null && next !== second;
    }, 20_000);
    crash((await pid()) as number);

    await until(async () => (await get("")).state === "failed", 20_000);
    const history = (await get("/status/history")).items.map((entry: { to: string }) => entry.to);
    expect(history.at(-1)).toBe("failed");
    const alerts = (
      await t.request({ method: "GET", url: `/api/v1/agents/alerts?agent_id=${agentId}` })
    ).json();
    expect(alerts.items).toEqual([expect.objectContaining({ kind: "crash_loop" })]);
    expect((await get("/process")).process).toBeNull();
    await until(() => channel.requests.length > 0);
    expect(channel.requests[0]?.rawBody).toContain(alerts.items[0].id);
    await channel.close();
  });

  it("stops the agent's process when its status is set to deleted: nothing could stop it after", async () => {
    const started = await t.request({ method: "POST", url: `/api/v1/agents/${agentId}/start` });
    expect(started.statusCode, started.body).toBe(200);
    const running = started.json().process.pid as number;
    const deleted = await t.request({
      method: "PUT",
      url: `/api/v1/agents/${agentId}/status`,
      payload: { status: "deleted", reason: "retired" },
    });
    expect(deleted.statusCode, deleted.body).toBe(200);
    // Signal 0 only asks whether the process group is still there.
    expect(() => process.kill(-running, 0)).toThrow(expect.objectContaining({ code: "ESRCH" }));
  });
});

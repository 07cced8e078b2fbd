import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { until } from "../helpers/eventually.js";
import { startTestSteward, type TestSteward } from "../helpers/steward.js";

interface LiveEvent {
  type: string;
  agent_id?: string;
  to?: string;
  health?: string;
  alert?: { kind: string; message: string };
}

/** Heartbeats lost and found, and the WebSocket that shows each change as it happens. */
describe("managed agent health", () => {
  let t: TestSteward;
  let baseUrl: string;
  let socket: WebSocket;
  const seen: LiveEvent[] = [];

  beforeAll(async () => {
    // One-second beats, unhealthy after one missed, failed after two: the sweep notices within 0.1 s.
    t = await startTestSteward("postgres", {
      STEWARD_HEARTBEAT_SWEEP_MS: "100",
      STEWARD_HEARTBEAT_UNHEALTHY_AFTER: "1",
      STEWARD_HEARTBEAT_FAILED_AFTER: "2",
    });
    baseUrl = await t.steward.server.listen({ host: "127.0.0.1", port: 0 });
    socket = new WebSocket(`${baseUrl.replace("http", "ws")}/api/v1/agents/ws`, {
      headers: { authorization: `Bearer ${t.adminKey}` },
    });
    socket.on("message", (data) => seen.push(JSON.parse(String(data)) as LiveEvent));
    await until(() => seen.some((event) => event.type === "ready"));
  });
  afterAll(async () => {
    socket?.close();
    await t?.close();
  });

  async function registerAgent(): Promise<{ id: string; token: string }> {
    const response = await t.request({
      method: "POST",
      url: "/api/v1/agents",
      payload: {
        name: `monitor-${randomBytes(3).toString("hex")}`,
        version: "1.0.0",
        description: "security monitor",
        type: "security-monitor",
        subscribed_topics: ["events.security.>"],
        findings_topic: "findings.security",
        heartbeat_interval_s: 1,
      },
    });
    expect(response.statusCode).toBe(201);
    return { id: response.json().agent.id, token: response.json().credentials.token };
  }

  const heartbeat = (id: string, token: string) =>
    t.request({
      method: "POST",
      url: `/api/v1/agents/${id}/heartbeat`,
      key: token,
      payload: { agent_id: id, status: "running", timestamp: new Date().toISOString(), uptime: 12 },
    });
  const agentState = async (id: string) =>
    (await t.request({ method: "GET", url: `/api/v1/agents/${id}` })).json();
  const eventsOf = (id: string) => seen.filter((event) => event.agent_id === id);

  it("marks an agent unhealthy, then failed with an alert, when its heartbeats stop; a beat brings it back", async () => {
    const { id, token } = await registerAgent();
    expect((await heartbeat(id, token)).statusCode).toBe(202);
    expect(await agentState(id)).toMatchObject({ state: "running", health: "healthy" });

    await until(async () => (await agentState(id)).state === "failed");
    expect(await agentState(id)).toMatchObject({ state: "failed", health: "unhealthy" });
    // The alert commits with the state change: there is no moment of a failed agent without it.
    const alerts = (
      await t.request({ method: "GET", url: `/api/v1/agents/alerts?agent_id=${id}&open=true` })
    ).json();
    expect(alerts.items).toEqual([expect.objectContaining({ kind: "missed_heartbeats", rule_id: null })]);
    const history = (await t.request({ method: "GET", url: `/api/v1/agents/${id}/status/history` })).json();
    expect(history.items.map((entry: { to: string }) => entry.to)).toEqual([
      "registered",
      "running",
      "failed",
    ]);
    expect(history.items[2].reason).toMatch(/missed \d+ heartbeats/);
    // Its health says how many beats it missed, not 0 for an agent no longer running.
    const health = (await t.request({ method: "GET", url: `/api/v1/agents/${id}/health` })).json();
    expect(health.missed_heartbeats).toBeGreaterThanOrEqual(2);

    expect((await heartbeat(id, token)).statusCode).toBe(202);
    expect(await agentState(id)).toMatchObject({ state: "running", health: "healthy" });
    const open = (
      await t.request({ method: "GET", url: `/api/v1/agents/alerts?agent_id=${id}&open=true` })
    ).json();
    expect(open.items).toEqual([]);
  });

  it("streams each status change, heartbeat, health change and alert over the WebSocket", async () => {
    const { id, token } = await registerAgent();
    await heartbeat(id, token);
    await until(() => eventsOf(id).some((event) => event.type === "alert"));
    await heartbeat(id, token);
    // The heartbeat goes out before the status and health changes it causes: wait for the last.
    await until(
      () =>
        eventsOf(id).filter((event) => event.type === "health" && event.health === "healthy").length === 2,
    );

    const story = eventsOf(id).map((event) =>
      event.type === "status"
        ? `status:${event.to}`
        : event.type === "health"
          ? `health:${event.health}`
          : event.type,
    );
    expect(story).toEqual([
      "status:registered",
      "heartbeat",
      "status:running",
      "health:healthy",
      "health:unhealthy",
      "status:failed",
      "alert",
      "heartbeat",
      "status:running",
      "health:healthy",
    ]);
    expect(eventsOf(id).find((event) => event.type === "alert")?.alert?.kind).toBe("missed_heartbeats");
  });

  it("refuses a WebSocket without a credential, and shows another organization nothing", async () => {
    const refused = new WebSocket(`${baseUrl.replace("http", "ws")}/api/v1/agents/ws`);
    const status = await new Promise<number>((resolve) => {
      refused.on("unexpected-response", (_request, response) => resolve(response.statusCode ?? 0));
      refused.on("open", () => resolve(101));
    });
    expect(status).toBe(401);

    const org = await t.request({
      method: "POST",
      url: "/api/v1/orgs",
      payload: { name: `org-${randomBytes(3).toString("hex")}` },
    });
    const key = await t.request({
      method: "POST",
      url: "/api/v1/api-keys",
      payload: { name: "viewer", role: "viewer", organization_id: org.json().id },
    });
    const other: LiveEvent[] = [];
    const otherSocket = new WebSocket(
      `${baseUrl.replace("http", "ws")}/api/v1/agents/ws?access_token=${key.json().key}`,
    );
    otherSocket.on("message", (data) => other.push(JSON.parse(String(data)) as LiveEvent));
    await until(() => other.some((event) => event.type === "ready"));
    const { id, token } = await registerAgent();
    await heartbeat(id, token);
    await until(() => eventsOf(id).some((event) => event.type === "heartbeat"));
    otherSocket.close();
    expect(other.filter((event) => event.type !== "ready")).toEqual([]);
    // The query credential is taken on the WebSocket route only, and never logged.
    const viaQuery = await t.request({
      method: "GET",
      url: `/api/v1/agents?access_token=${key.json().key}`,
      key: null,
      headers: { upgrade: "websocket" },
    });
    expect(viaQuery.statusCode).toBe(401);
    expect(t.logs.join("\n")).not.toContain(key.json().key);
  });
});

describe("an agent late but not yet failed", () => {
  it("is unhealthy while still running, and healthy again at its next beat", async () => {
    const t = await startTestSteward("postgres", {
      STEWARD_HEARTBEAT_SWEEP_MS: "100",
      STEWARD_HEARTBEAT_UNHEALTHY_AFTER: "1",
      STEWARD_HEARTBEAT_FAILED_AFTER: "1000",
    });
    try {
      const registered = await t.request({
        method: "POST",
        url: "/api/v1/agents",
        payload: {
          name: "slow-beater",
          version: "1.0.0",
          description: "beats late",
          subscribed_topics: ["work.>"],
          findings_topic: "findings.work",
          heartbeat_interval_s: 1,
        },
      });
      const { agent, credentials } = registered.json();
      const beat = () =>
        t.request({
          method: "POST",
          url: `/api/v1/agents/${agent.id}/heartbeat`,
          key: credentials.token,
          payload: {},
        });
      const read = async () => (await t.request({ method: "GET", url: `/api/v1/agents/${agent.id}` })).json();
      await beat();
      await until(async () => (await read()).health === "unhealthy");
      expect(await read()).toMatchObject({ state: "running", health: "unhealthy" });
      await beat();
      expect(await read()).toMatchObject({ state: "running", health: "healthy" });
    } finally {
      await t.close();
    }
  });
});

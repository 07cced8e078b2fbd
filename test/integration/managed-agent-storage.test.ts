import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StorageKind, startTestSteward, type TestSteward } from "../helpers/steward.js";

const EXAMPLES = fileURLToPath(new URL("../../examples/agents/", import.meta.url));

/** The managed-agent flow that touches every table, on PostgreSQL and on the embedded PGlite. */
describe.each<StorageKind>(["postgres", "embedded"])("managed agents on %s", (kind) => {
  let t: TestSteward;
  let id: string;
  let token: string;

  beforeAll(async () => {
    t = await startTestSteward(kind, { STEWARD_AGENTS_DIR: EXAMPLES, STEWARD_AGENTS_WATCH: "false" });
    const discovered = (await t.request({ method: "GET", url: "/api/v1/agents?name=log-sentinel" })).json();
    id = discovered.items[0].id;
    const registered = await t.request({ method: "POST", url: "/api/v1/agents", payload: { agent_id: id } });
    expect(registered.statusCode).toBe(201);
    token = registered.json().credentials.token;
  });
  afterAll(async () => {
    await t?.close();
  });

  const asAgent = (method: "GET" | "POST" | "PUT", path: string, payload?: unknown) =>
    t.request({ method, url: `/api/v1/agents/${id}${path}`, key: token, payload: payload as object });

  it("keeps the discovery report, config versions, transitions, telemetry and alerts", async () => {
    const report = (await t.request({ method: "GET", url: "/api/v1/agents/discovery-report" })).json();
    expect(report.agents).toEqual([expect.objectContaining({ id, name: "log-sentinel", version: "1.0.0" })]);

    expect((await asAgent("PUT", "/config", { pattern: "PANIC" })).statusCode).toBe(200);
    expect((await asAgent("PUT", "/config", { pattern: "PANIC|OOPS", severity: "error" })).statusCode).toBe(
      200,
    );
    const history = (await asAgent("GET", "/config/history")).json();
    expect(history.items.map((version: { version: number }) => version.version)).toEqual([2, 1]);
    expect(history.items[0].diff).toEqual({
      added: { severity: "error" },
      removed: [],
      changed: { pattern: { from: "PANIC", to: "PANIC|OOPS" } },
    });
    const config = (await asAgent("GET", "/config")).json();
    expect(config.sources).toEqual({ pattern: "stored", severity: "stored", report_every_s: "default" });

    const rule = await t.request({
      method: "POST",
      url: "/api/v1/agents/alert-rules",
      payload: { name: "memory", kind: "metric_threshold", metric: "memory", threshold: 1000 },
    });
    expect(rule.statusCode).toBe(201);
    expect((await asAgent("POST", "/heartbeat", { status: "running", uptime: 3 })).statusCode).toBe(202);
    expect((await asAgent("POST", "/metrics", { events_processed: 4, memory: 5000 })).statusCode).toBe(202);
    expect(
      (await asAgent("POST", "/logs", { entries: [{ level: "error", message: "disk almost full" }] }))
        .statusCode,
    ).toBe(202);

    const health = (await asAgent("GET", "/health")).json();
    expect(health).toMatchObject({ state: "running", health: "healthy", uptime_s: 3 });
    expect(health.metrics.memory.value).toBe(5000);
    expect(health.open_alerts).toEqual([expect.objectContaining({ kind: "metric_threshold" })]);
    expect((await asAgent("GET", "/logs?level=error")).json().items[0].message).toBe("disk almost full");
    const transitions = (await asAgent("GET", "/status/history")).json().items;
    expect(transitions.map((entry: { to: string }) => entry.to)).toEqual([
      "discovered",
      "registered",
      "running",
    ]);
  });
});

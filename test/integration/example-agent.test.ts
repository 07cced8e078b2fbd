import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type ProcessExit, ProcessManager, type ProcessSpec } from "../../src/lifecycle/process-manager.js";
import { until } from "../helpers/eventually.js";
import { TEST_NATS_URL as NATS_URL } from "../helpers/services.js";

const PACKAGE_DIR = fileURLToPath(new URL("../../examples/agents/log-sentinel/", import.meta.url));
// tsx compiles agent.ts on start: allow for a slow machine.
const STARTUP_MS = 20_000;

const managers: ProcessManager[] = [];
afterEach(async () => {
  await Promise.all(managers.splice(0).map((manager) => manager.stopAll()));
});

/** A process manager that keeps the agent's output (to show when an assertion fails) and its crashes. */
function manager() {
  const output: string[] = [];
  const crashes: ProcessExit[] = [];
  const none = () => {};
  const pm = new ProcessManager({
    events: {
      started: none,
      output: (_id, stream, line) => output.push(`${stream}: ${line}`),
      crashed: (_id, { code, signal }) => crashes.push({ code, signal }),
      gaveUp: none,
      stopped: none,
    },
    restartDelayMs: 100,
    maxDelayMs: 1000,
    maxRestarts: 0,
    stableAfterMs: 60_000,
    stopGraceMs: 5000,
  });
  managers.push(pm);
  return { pm, crashes, output: () => output.join("\n") };
}

/** The agent's environment as Steward's process manager gives it, plus the test's overrides. */
function agentSpec(agentId: string, env: Record<string, string>): () => Promise<ProcessSpec> {
  return async () => ({
    command: "node --import tsx agent.ts",
    cwd: PACKAGE_DIR,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      STEWARD_AGENT_ID: agentId,
      STEWARD_AGENT_CONFIG: JSON.stringify({ pattern: "ERROR|FATAL", severity: "warn", report_every_s: 30 }),
      STEWARD_HEARTBEAT_INTERVAL_S: "1",
      STEWARD_FINDINGS_TOPIC: "findings.logs",
      ...env,
    },
  });
}

const configMessage = (version: number) => ({
  type: "config",
  version,
  config: { pattern: "BOOM", severity: "error", report_every_s: 1 },
});

interface LogEntry {
  level: string;
  message: string;
  context: Record<string, unknown>;
  timestamp: string;
}

describe("log-sentinel over NATS", () => {
  let nc: NatsConnection;
  beforeAll(async () => {
    nc = await connect({ servers: NATS_URL });
  });
  afterAll(async () => {
    await nc?.drain();
  });

  /** Collects the JSON messages on a subject. */
  function collect<T>(subject: string): T[] {
    const received: T[] = [];
    nc.subscribe(subject, {
      callback: (_error, message) => {
        received.push(message.json<T>());
      },
    });
    return received;
  }

  it("heartbeats, applies pushed config, publishes findings and exits 0 on SIGTERM", async () => {
    const agentId = `log-analyser-${randomUUID()}`;
    const run = randomUUID();
    const heartbeats = collect<Record<string, unknown>>(`agents.${agentId}.heartbeat`);
    const metrics = collect<Record<string, unknown>>(`agents.${agentId}.metrics`);
    const logs = collect<{ entries: LogEntry[] }>(`agents.${agentId}.logs`);
    const findings = collect<Record<string, unknown>>(`findings.logs.${run}`);
    await nc.flush();
    const { pm, output } = manager();
    await pm.start(
      agentId,
      agentSpec(agentId, {
        NATS_URL,
        STEWARD_URL: "http://127.0.0.1:9",
        STEWARD_SUBSCRIBED_TOPICS: `logs.raw.${run}.>`,
        STEWARD_FINDINGS_TOPIC: `findings.logs.${run}`,
        STEWARD_AGENT_CONFIG_VERSION: "1",
      }),
    );

    await until(() => heartbeats.length > 0, STARTUP_MS);
    expect(heartbeats[0], output()).toEqual({
      agent_id: agentId,
      status: "running",
      timestamp: expect.any(String),
      uptime: expect.any(Number),
    });
    expect(Number.isNaN(Date.parse(String(heartbeats[0]?.timestamp)))).toBe(false);
    await until(() => metrics.length > 0);
    expect(Object.keys(metrics[0] ?? {}).sort()).toEqual(
      ["cpu", "errors", "events_processed", "memory", "processing_time_ms", "timestamp"].sort(),
    );

    // Version 1 is the one it started with: old news. Messages arrive in order, so once version 2
    // is applied, version 1 has been looked at.
    nc.publish(`agents.${agentId}.control`, JSON.stringify(configMessage(1)));
    nc.publish(`agents.${agentId}.control`, JSON.stringify(configMessage(2)));
    const applied = () =>
      logs.flatMap((log) => log.entries).find((entry) => entry.message === "applied config version 2");
    await until(() => applied() !== undefined);
    expect(applied(), output()).toMatchObject({ level: "info", context: { version: 2 } });
    expect(
      logs.flatMap((log) => log.entries).filter((entry) => entry.message.startsWith("applied")),
    ).toHaveLength(1);

    // The old pattern no longer matches; messages are handled in order, so when the BOOM finding
    // arrives, the line before it has been looked at.
    nc.publish(`logs.raw.${run}.app`, "an ERROR the new pattern ignores");
    nc.publish(`logs.raw.${run}.app`, "x BOOM y");
    await until(() => findings.length > 0);
    expect(findings, output()).toEqual([
      {
        agent_id: agentId,
        severity: "error",
        line: "x BOOM y",
        subject: `logs.raw.${run}.app`,
        timestamp: expect.any(String),
      },
    ]);

    expect(await pm.stop(agentId)).toEqual({ code: 0, signal: null });
    await nc.flush();
    expect(logs.flatMap((log) => log.entries).map((entry) => entry.message)).toContain("stopping");
  });

  it("exits 0 on a stop control message", async () => {
    const agentId = `log-analyser-${randomUUID()}`;
    const heartbeats = collect(`agents.${agentId}.heartbeat`);
    await nc.flush();
    const { pm, crashes, output } = manager();
    await pm.start(agentId, agentSpec(agentId, { NATS_URL, STEWARD_SUBSCRIBED_TOPICS: "" }));
    await until(() => heartbeats.length > 0, STARTUP_MS);
    nc.publish(`agents.${agentId}.control`, JSON.stringify({ type: "stop" }));
    // The manager did not ask for this exit, so it counts it as a crash (and, here, gives up).
    await until(() => pm.status(agentId) === undefined);
    expect(crashes, output()).toEqual([{ code: 0, signal: null }]);
  });
});

describe("log-sentinel over HTTP", () => {
  interface Recorded {
    method: string;
    path: string;
    authorization: string | undefined;
    contentType: string | undefined;
    body: unknown;
  }
  const requests: Recorded[] = [];
  let server: Server;
  let agentId = "";

  /** Answers like Steward's agent API; the long poll for a version past 3 is held until the agent lets go. */
  async function steward(request: IncomingMessage, response: ServerResponse): Promise<void> {
    let text = "";
    for await (const chunk of request) text += chunk;
    const path = request.url ?? "";
    requests.push({
      method: request.method ?? "",
      path,
      authorization: request.headers.authorization,
      contentType: request.headers["content-type"],
      body: text ? JSON.parse(text) : undefined,
    });
    const prefix = `/api/v1/agents/${agentId}`;
    const json = (status: number, body: unknown) =>
      response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (path === `${prefix}/token` && request.method === "POST") {
      json(200, { token: "token-2", expires_at: new Date(Date.now() + 3_600_000).toISOString() });
    } else if (
      path.startsWith(`${prefix}/control?after=`) &&
      Number(new URL(path, "http://x").searchParams.get("after")) < 3
    ) {
      json(200, configMessage(3));
    } else if (path.startsWith(`${prefix}/control`)) {
      // Nothing newer: a real Steward would answer 204 after wait_s.
    } else if (request.method === "POST" && /\/(heartbeat|metrics|logs)$/.test(path)) {
      response.writeHead(202).end();
    } else {
      response.writeHead(404).end();
    }
  }

  beforeAll(async () => {
    server = createServer((request, response) => void steward(request, response));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it("reports with its bearer token, long-polls for config, refreshes the token and exits 0", async () => {
    agentId = `log-analyser-${randomUUID()}`;
    const { port } = server.address() as AddressInfo;
    const { pm, output } = manager();
    await pm.start(
      agentId,
      agentSpec(agentId, {
        STEWARD_URL: `http://127.0.0.1:${port}`,
        STEWARD_AGENT_TOKEN: "token-1",
        STEWARD_AGENT_CONFIG_VERSION: "2",
        // Two seconds left: the agent swaps it after one (half its remaining life).
        STEWARD_AGENT_TOKEN_EXPIRES_AT: new Date(Date.now() + 2000).toISOString(),
        STEWARD_SUBSCRIBED_TOPICS: "logs.raw.>",
      }),
    );
    const sent = (kind: string) => requests.filter((request) => request.path.endsWith(`/${kind}`));
    const logMessages = () =>
      sent("logs").flatMap((request) =>
        (request.body as { entries: LogEntry[] }).entries.map((entry) => entry.message),
      );

    await until(() => sent("heartbeat").length > 0, STARTUP_MS);
    expect(sent("heartbeat")[0], output()).toEqual({
      method: "POST",
      path: `/api/v1/agents/${agentId}/heartbeat`,
      authorization: "Bearer token-1",
      contentType: "application/json",
      body: {
        agent_id: agentId,
        status: "running",
        timestamp: expect.any(String),
        uptime: expect.any(Number),
      },
    });
    // Metrics follow each heartbeat in a request of their own.
    await until(() => sent("metrics").length > 0);
    expect(sent("metrics")[0]?.body).toMatchObject({
      events_processed: 0,
      errors: 0,
      memory: expect.any(Number),
    });

    await until(() => logMessages().includes("applied config version 3"));
    expect(logMessages(), output()).toContain("applied config version 3");
    const polls = requests.filter((request) => request.path.includes("/control?"));
    expect(polls.map((poll) => [poll.method, poll.path.split("/control")[1], poll.authorization])).toEqual([
      ["GET", "?after=2&wait_s=25", "Bearer token-1"],
      ["GET", "?after=3&wait_s=25", "Bearer token-1"],
    ]);

    // The refresh uses the old token, and later calls the new one.
    await until(() => requests.some((request) => request.authorization === "Bearer token-2"));
    expect(sent("token"), output()).toMatchObject([
      { method: "POST", authorization: "Bearer token-1", contentType: undefined, body: undefined },
    ]);
    expect(requests.at(-1)?.authorization).toBe("Bearer token-2");

    expect(await pm.stop(agentId)).toEqual({ code: 0, signal: null });
    expect(logMessages()).toContain("stopping");
  });
});

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../helpers/ports.js";

/**
 * Steward as a user runs it: `npm start` on a bare machine (embedded PGlite, no
 * PostgreSQL settings), the first admin key read from the start-up output.
 */

const ROOT = new URL("../..", import.meta.url).pathname;

interface AgentPage {
  total: number;
  items: Array<{ id: string; name: string }>;
}

interface Running {
  process: ChildProcess;
  dataDir: string;
  output: () => string;
  baseUrl: string;
}

async function start(dataDir: string): Promise<Running> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    STEWARD_DATA_DIR: dataDir,
    PORT: String(port),
    HOST: "127.0.0.1",
  };
  for (const name of [
    "DATABASE_URL",
    "POSTGRES_HOST",
    "STEWARD_BOOTSTRAP_ADMIN_KEY",
    "STEWARD_ENCRYPTION_KEY",
    // The test runner's "test": a user's shell has none.
    "NODE_ENV",
  ]) {
    delete env[name];
  }
  const child = spawn("npm", ["start"], {
    cwd: ROOT,
    env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk) => (output += chunk));
  child.stderr?.on("data", (chunk) => (output += chunk));
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`steward exited early:\n${output}`);
    const healthy = await fetch(`${baseUrl}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (healthy) return { process: child, dataDir, output: () => output, baseUrl };
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`steward did not become healthy:\n${output}`);
}

/**
 * SIGTERM to the whole process group (npm and the server), as a supervisor would.
 * True when the server then shut down gracefully: it closes the database and
 * releases the data dir, whose lock file it removes last.
 */
async function stop(running: Running): Promise<boolean> {
  const child = running.process;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, "exit");
    process.kill(-(child.pid as number), "SIGTERM");
    await exited;
  }
  return waitUntilGone(join(running.dataDir, "steward.pid"));
}

async function waitUntilGone(path: string): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (!existsSync(path)) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

describe("npm start on the embedded default", () => {
  let dataDir: string;
  let server: Running;
  let key: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "steward-e2e-"));
    server = await start(dataDir);
    key = /sk_live_[0-9A-Za-z]{32}/.exec(server.output())?.[0] ?? "";
  }, 120_000);
  afterAll(async () => {
    if (server) await stop(server);
    await rm(dataDir, { recursive: true, force: true });
  });

  const call = (method: string, path: string, body?: unknown) =>
    fetch(`${server.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });

  it("prints a first admin key once and reports ready on PGlite", async () => {
    expect(key).not.toBe("");
    const ready = await fetch(`${server.baseUrl}/ready`);
    expect(await ready.json()).toMatchObject({ status: "ready", database: "embedded" });
  });

  it("walks register → list → update → delete", async () => {
    for (let i = 1; i <= 25; i++) {
      const response = await call("POST", "/api/v1/external-agents", {
        name: `agent-${i}`,
        platform: "discord",
        webhook_url: "https://agents.example.com/run",
        auth_type: "api_key",
        auth_config: { key: `agent-key-${i}-abcdefghijkl` },
        platform_config: { webhook_url: "https://discord.com/api/webhooks/1/secret-token" },
      });
      expect(response.status).toBe(201);
    }
    const page = (await (await call("GET", "/api/v1/external-agents?page=3&limit=10")).json()) as AgentPage;
    expect(page).toMatchObject({ total: 25, page: 3, limit: 10, has_more: false });
    expect(page.items).toHaveLength(5);

    const [target] = page.items;
    if (!target) throw new Error("page 3 is empty");
    const updated = await call("PATCH", `/api/v1/external-agents/${target.id}`, {
      description: "updated",
      tags: ["e2e"],
    });
    expect(updated.status).toBe(200);
    expect(await updated.json()).toMatchObject({ description: "updated", tags: ["e2e"], version: 2 });

    expect((await call("DELETE", `/api/v1/external-agents/${target.id}`)).status).toBe(204);
    const after = (await (await call("GET", "/api/v1/external-agents?limit=100")).json()) as AgentPage;
    expect(after.total).toBe(24);
    expect(after.items.map((agent) => agent.id)).not.toContain(target.id);
  });

  it("stops cleanly and keeps its data across a restart, without a new key", async () => {
    expect(await stop(server)).toBe(true);
    expect(server.output()).toContain("shutting down");
    server = await start(dataDir);
    expect(server.output()).not.toMatch(/sk_live_/);
    const list = (await (await call("GET", "/api/v1/external-agents?limit=1")).json()) as AgentPage;
    expect(list.total).toBe(24);
  }, 120_000);
});

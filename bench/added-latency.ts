/**
 * Added latency of a governed invoke over calling the agent directly: one connection,
 * sequential calls, p50 and p99 of each, on the embedded default and on PostgreSQL +
 * Redis. A local agent stand-in answers a small JSON body. Loopback only.
 *
 *   npm run bench            (PostgreSQL and Redis from STEWARD_BENCH_DATABASE_URL / _REDIS_URL)
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { Pool } from "undici";
import { createSteward } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/observability/logger.js";

const CALLS = Number(process.env.BENCH_CALLS ?? 2000);
const WARMUP = 200;
const DATABASE_URL = process.env.STEWARD_BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.STEWARD_BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const PAYLOAD = JSON.stringify({ input: "x".repeat(260), context: { ticket: 42 } });

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function measure(origin: string, path: string, headers: Record<string, string>): Promise<number[]> {
  const pool = new Pool(origin, { connections: 1 });
  const samples: number[] = [];
  for (let i = 0; i < WARMUP + CALLS; i++) {
    const start = process.hrtime.bigint();
    const response = await pool.request({
      method: "POST",
      path,
      headers: { "content-type": "application/json", ...headers },
      body: PAYLOAD,
    });
    await response.body.dump();
    if (response.statusCode !== 200) throw new Error(`${origin}${path} answered ${response.statusCode}`);
    if (i >= WARMUP) samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  await pool.close();
  return samples.sort((a, b) => a - b);
}

async function startAgent(): Promise<{ url: string; close(): Promise<void> }> {
  const body = JSON.stringify({ result: "ok", usage: { cost_usd: 0.001 } });
  const server = createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function runStewardMode(mode: "embedded" | "postgres", agentUrl: string) {
  const dataDir = await mkdtemp(join(tmpdir(), "steward-bench-"));
  const schema = `steward_bench_${randomBytes(4).toString("hex")}`;
  const adminKey = `sk_live_${randomBytes(24).toString("hex")}`;
  const config = loadConfig({
    STEWARD_DATA_DIR: dataDir,
    STEWARD_BOOTSTRAP_ADMIN_KEY: adminKey,
    STEWARD_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    STEWARD_ALLOW_PRIVATE_NETWORKS: "127.0.0.1/32",
    HOST: "127.0.0.1",
    LOG_LEVEL: "warn",
    ...(mode === "postgres"
      ? { DATABASE_URL, STEWARD_DB_SCHEMA: schema, REDIS_URL, STEWARD_REDIS_PREFIX: `${schema}:` }
      : {}),
  });
  const steward = await createSteward(config, createLogger("warn"));
  await steward.server.listen({ host: "127.0.0.1", port: 0 });
  const { port } = steward.server.server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  const auth = { authorization: `Bearer ${adminKey}` };
  try {
    await fetch(`${origin}/api/v1/policies`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ name: "allow-all", effect: "allow", conditions: [] }),
    });
    const created = await fetch(`${origin}/api/v1/external-agents`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({
        name: "bench-agent",
        platform: "custom_http",
        webhook_url: `${agentUrl}/invoke`,
        rate_limit_config: { requests_per_minute: 1_000_000 },
        budget_config: { cost_per_execution: 0.001, max_monthly_cost: 1_000_000 },
      }),
    });
    const { id } = (await created.json()) as { id: string };
    return await measure(origin, `/api/v1/external-agents/${id}/invoke`, auth);
  } finally {
    await steward.close();
    await rm(dataDir, { recursive: true, force: true });
    if (mode === "postgres") {
      const client = new pg.Client({ connectionString: DATABASE_URL });
      await client.connect();
      await client.query(`DROP SCHEMA "${schema}" CASCADE`);
      await client.end();
    }
  }
}

const agent = await startAgent();
const direct = await measure(agent.url, "/invoke", {});
const rows: Array<[string, number[]]> = [["direct to the agent", direct]];
rows.push(["Steward on PostgreSQL + Redis", await runStewardMode("postgres", agent.url)]);
rows.push(["Steward embedded (PGlite, memory limits)", await runStewardMode("embedded", agent.url)]);
await agent.close();

const directP50 = percentile(direct, 50);
const directP99 = percentile(direct, 99);
process.stdout.write(`\n${CALLS} sequential calls, 1 connection, 300-byte JSON body\n\n`);
process.stdout.write("| path | p50 ms | p99 ms | added p50 ms | added p99 ms |\n|---|---|---|---|---|\n");
for (const [name, samples] of rows) {
  const p50 = percentile(samples, 50);
  const p99 = percentile(samples, 99);
  process.stdout.write(
    `| ${name} | ${p50.toFixed(2)} | ${p99.toFixed(2)} | ${(p50 - directP50).toFixed(2)} | ${(p99 - directP99).toFixed(2)} |\n`,
  );
}

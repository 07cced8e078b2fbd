import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { type BenchProcess, startProcess } from "./child.js";
import type { BenchSettings } from "./settings.js";

export type StewardMode = "postgres" | "embedded";

/**
 * Steward runs with the V8 heap Node gives itself under the Helm chart's 1 GiB memory
 * limit (`api.resources.limits.memory`): a heap limit of 524 MB, as it is deployed. Left
 * to size the heap from a large machine's memory (4 GB on 24 GB), V8 lets garbage pile up
 * far past what is live before it collects, and peak memory measures that instead.
 */
export const STEWARD_HEAP = {
  flag: "--max-old-space-size=476",
  described: "heap limit 524 MB, as under the Helm chart's 1 GiB memory limit",
};

/**
 * The glibc allocator settings `npm start` and the image run Steward with, read from the
 * start script so the bench measures what users run.
 */
export const STEWARD_ALLOCATOR = allocatorSettings();

function allocatorSettings(): Record<string, string> {
  const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  const start: string = manifest.scripts.start;
  // NAME=${NAME:-default}: the default, as npm start uses it when the environment sets none.
  return Object.fromEntries(
    [...start.matchAll(/\b(MALLOC_\w+)=\$\{\1:-([^}]+)\}/g)].map(([, name, value]) => [name, value]),
  );
}

/** Steward from `dist/` as its own process, with an admin key and a way to call its API. */
export interface BenchSteward {
  process: BenchProcess;
  adminKey: string;
  /** Database schema (PostgreSQL mode): the bench reads and writes rows behind the API here. */
  schema: string;
  api<T>(method: string, path: string, body?: unknown): Promise<T>;
  stop(): Promise<void>;
}

/**
 * Starts Steward on PostgreSQL + Redis (its own schema and key prefix, dropped at stop) or
 * on the embedded default, with `extraEnv` on top (NATS settings, say).
 */
export async function startSteward(
  settings: BenchSettings,
  mode: StewardMode,
  name: string,
  extraEnv: Record<string, string> = {},
): Promise<BenchSteward> {
  const schema = `steward_bench_${randomBytes(4).toString("hex")}`;
  const dataDir = await mkdtemp(join(tmpdir(), "steward-bench-"));
  const adminKey = `sk_live_${randomBytes(24).toString("hex")}`;
  const process = await startProcess(
    name,
    [...profilerFlags(), STEWARD_HEAP.flag, "dist/main.js", "serve"],
    {
      STEWARD_DATA_DIR: dataDir,
      STEWARD_BOOTSTRAP_ADMIN_KEY: adminKey,
      STEWARD_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
      STEWARD_ALLOW_PRIVATE_NETWORKS: "127.0.0.1/32",
      STEWARD_AGENTS_WATCH: "false",
      HOST: "127.0.0.1",
      ...STEWARD_ALLOCATOR,
      ...(mode === "postgres"
        ? {
            DATABASE_URL: settings.databaseUrl,
            STEWARD_DB_SCHEMA: schema,
            REDIS_URL: settings.redisUrl,
            STEWARD_REDIS_PREFIX: `${schema}:`,
          }
        : {}),
      ...extraEnv,
    },
    "/health",
  );
  async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
    const answer = await fetch(`${process.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${adminKey}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await answer.text();
    if (!answer.ok) throw new Error(`${method} ${path} answered ${answer.status}: ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }
  return {
    process,
    adminKey,
    schema,
    api,
    async stop() {
      await process.stop();
      await rm(dataDir, { recursive: true, force: true });
      if (mode === "postgres") await dropSchema(settings.databaseUrl, schema);
    },
  };
}

/** With BENCH_PROFILE=1, each Steward process writes a CPU profile to bench/results/profiles. */
function profilerFlags(): string[] {
  if (process.env.BENCH_PROFILE !== "1") return [];
  return ["--cpu-prof", `--cpu-prof-dir=${new URL("results/profiles", import.meta.url).pathname}`];
}

/** Drops a schema a bench run made for itself. */
export async function dropSchema(databaseUrl: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** What the invoke runs call: an agent under a high rate limit, a budget and one policy. */
export async function createGovernedAgent(steward: BenchSteward, agentUrl: string): Promise<string> {
  await steward.api("POST", "/api/v1/policies", {
    name: "bench-allow-loopback-callers",
    effect: "allow",
    conditions: [{ type: "ip_ranges", values: ["127.0.0.0/8"] }],
  });
  const agent = await steward.api<{ id: string }>("POST", "/api/v1/external-agents", {
    name: `bench-agent-${randomBytes(3).toString("hex")}`,
    platform: "custom_http",
    webhook_url: `${agentUrl}/invoke`,
    rate_limit_config: { requests_per_minute: 100_000_000, requests_per_hour: 100_000_000 },
    budget_config: { cost_per_execution: 0.000001, max_monthly_cost: 1_000_000 },
  });
  return agent.id;
}

/** How many of an agent's invocations Steward recorded, of one status or of all. */
export async function countInvocations(steward: BenchSteward, agentId: string, status?: string) {
  const filter = status ? `status=${status}&` : "";
  const page = await steward.api<{ total: number }>(
    "GET",
    `/api/v1/external-agents/${agentId}/invocations?${filter}limit=1`,
  );
  return page.total;
}

/**
 * The number of an agent's invocations once none is running any more: calls whose
 * client left at the end of a round still finish, and are counted when they have.
 */
export async function settledInvocations(steward: BenchSteward, agentId: string): Promise<number> {
  const deadline = Date.now() + 30_000;
  while ((await countInvocations(steward, agentId, "running")) > 0) {
    if (Date.now() > deadline) throw new Error(`invocations of ${agentId} still running after 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return countInvocations(steward, agentId);
}

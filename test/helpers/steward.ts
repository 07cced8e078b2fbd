import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import type { InjectOptions, LightMyRequestResponse } from "fastify";
import { createSteward, type Steward, type StewardRoutes } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/observability/logger.js";
import { uniqueRedisPrefix, uniqueSchema } from "./schema.js";
import { TEST_DATABASE_URL, TEST_REDIS_URL } from "./services.js";

export type StorageKind = "postgres" | "embedded";

export interface TestSteward {
  steward: Steward;
  adminKey: string;
  /** Every log line written while the instance ran. */
  logs: string[];
  request(options: InjectOptions & { key?: string | null }): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/**
 * A complete Steward (real database, real migrations, real auth) answering through
 * Fastify's inject, on PostgreSQL in a fresh schema or on PGlite in a fresh data dir.
 */
export async function startTestSteward(
  kind: StorageKind = "postgres",
  env: Record<string, string> = {},
  serves: StewardRoutes = "api",
): Promise<TestSteward> {
  const dataDir = await mkdtemp(join(tmpdir(), "steward-test-"));
  const adminKey = `sk_live_${randomBytes(24).toString("hex")}`;
  const config = loadConfig({
    STEWARD_DATA_DIR: dataDir,
    STEWARD_BOOTSTRAP_ADMIN_KEY: adminKey,
    STEWARD_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    ...(kind === "postgres" ? { DATABASE_URL: TEST_DATABASE_URL, STEWARD_DB_SCHEMA: uniqueSchema() } : {}),
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const steward = await createSteward(config, createLogger("debug", sink), serves);
  return {
    steward,
    adminKey,
    logs,
    request({ key = adminKey, headers, ...options }) {
      return steward.server.inject({
        ...options,
        headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
      });
    },
    async close() {
      await steward.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Creates an organization and a key with `role` in it, through the API. */
export async function createOrgWithKey(
  t: TestSteward,
  role: string,
  name = `org-${randomBytes(4).toString("hex")}`,
): Promise<{ organizationId: string; key: string }> {
  const org = await t.request({ method: "POST", url: "/api/v1/orgs", payload: { name } });
  if (org.statusCode !== 201) throw new Error(`creating org failed: ${org.body}`);
  const organizationId = org.json().id as string;
  return { organizationId, key: await createKey(t, role, organizationId) };
}

/** Creates an API key with `role` (in the admin's organization unless one is named). */
export async function createKey(t: TestSteward, role: string, organizationId?: string): Promise<string> {
  const response = await t.request({
    method: "POST",
    url: "/api/v1/api-keys",
    payload: { name: `${role} key`, role, ...(organizationId ? { organization_id: organizationId } : {}) },
  });
  if (response.statusCode !== 201) throw new Error(`creating key failed: ${response.body}`);
  return response.json().key as string;
}

/**
 * Settings for a Steward that invokes local stand-in agents: 127.0.0.1 allowed past the
 * SSRF guard, and rate limits in the real Redis under a key prefix of its own.
 */
export function invokeEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    STEWARD_ALLOW_PRIVATE_NETWORKS: "127.0.0.1/32",
    REDIS_URL: TEST_REDIS_URL,
    STEWARD_REDIS_PREFIX: uniqueRedisPrefix(),
    // A loaded CI machine can keep Redis past the 50 ms default; tests counting exact
    // admissions must not see the fail mode let a call through.
    STEWARD_RATE_LIMIT_TIMEOUT_MS: "1000",
    ...extra,
  };
}

/** Registers an agent (custom_http at `webhookUrl`, uniquely named, unless overridden) and answers its id. */
export async function registerAgent(
  t: TestSteward,
  webhookUrl: string,
  overrides: Record<string, unknown> = {},
  key?: string,
): Promise<string> {
  const response = await t.request({
    method: "POST",
    url: "/api/v1/external-agents",
    key,
    payload: {
      name: `agent-${randomBytes(4).toString("hex")}`,
      platform: "custom_http",
      webhook_url: webhookUrl,
      ...overrides,
    },
  });
  if (response.statusCode !== 201) throw new Error(`registering an agent failed: ${response.body}`);
  return response.json().id as string;
}

/** Makes a test Steward listen on a free loopback port (for a browser, or a streaming reader); answers its base URL. */
export async function serveOnLoopback(t: TestSteward): Promise<string> {
  await t.steward.server.listen({ port: 0, host: "127.0.0.1" });
  const address = t.steward.server.server.address();
  if (!address || typeof address === "string") throw new Error("the test Steward is not listening");
  return `http://127.0.0.1:${address.port}`;
}

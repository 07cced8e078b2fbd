import { randomBytes } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import type { InjectOptions, LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDnsServer, type TestDnsServer } from "../helpers/dns-server.js";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import { TEST_REDIS_URL } from "../helpers/services.js";
import { invokeEnv, startTestSteward, type TestSteward } from "../helpers/steward.js";
import { TcpProxy } from "../helpers/tcp-proxy.js";

/**
 * The invoke pipeline when what it stands on misbehaves: replicas sharing one Redis,
 * Redis going away and coming back (fail open and fail closed), and agent URLs that
 * lead somewhere they must not — at registration, through DNS rebinding at connect
 * time, and through redirects. Real PostgreSQL and Redis; agents are local mocks, and
 * the canary is a mock that must never be reached.
 */

/** How long a recovered Redis may take to be used again (the client retries at most every second). */
const RECOVERY_MS = 10_000;
/**
 * A public address for a name to resolve to while its URL is registered. It is only ever
 * resolved, never connected to: the name points at 127.0.0.1 again before the invoke.
 * (Documentation ranges such as 203.0.113.0/24 would not do: the guard refuses them.)
 */
const PUBLIC_ADDRESS = "93.184.215.14";

/** Anything that answers HTTP the way a TestSteward does, with a key of its choosing. */
type Client = (options: InjectOptions) => Promise<LightMyRequestResponse>;

const as =
  (t: TestSteward, key: string): Client =>
  (options) =>
    t.request({ ...options, key });

let agent: MockAgent;
/** Never legitimately called: every test that could leak a request there checks it got none. */
let canary: MockAgent;
const closers: Array<() => Promise<unknown>> = [];
/** Two replicas of one install (invokeEnv: 127.0.0.1/32 allowed), as the admin. */
let first: Client;
let second: Client;

beforeAll(async () => {
  agent = await startMockAgent();
  canary = await startMockAgent(() => ({ status: 418, body: { error: "the canary was reached" } }));
  closers.push(
    () => agent.close(),
    () => canary.close(),
  );
  // Replicas share the schema, the key prefix, the admin key and the encryption key.
  const env = invokeEnv({ STEWARD_ENCRYPTION_KEY: randomBytes(32).toString("base64") });
  const one = await started("postgres", env);
  const two = await started("postgres", {
    ...env,
    STEWARD_DB_SCHEMA: one.steward.database.schema,
    STEWARD_BOOTSTRAP_ADMIN_KEY: one.adminKey,
  });
  first = as(one, one.adminKey);
  second = as(two, one.adminKey);
});

afterAll(async () => {
  // Stewards were pushed after the mocks and proxies they use, so they close first.
  for (const close of closers.reverse()) await close();
});

async function started(kind: "postgres", env: Record<string, string>): Promise<TestSteward> {
  const t = await startTestSteward(kind, env);
  closers.push(() => t.close());
  return t;
}

function agentBody(overrides: Record<string, unknown>): Record<string, unknown> {
  return {
    name: `agent-${randomBytes(5).toString("hex")}`,
    platform: "custom_http",
    webhook_url: agent.url,
    auth_type: "bearer_token",
    auth_config: { token: "agent-bearer-token-5150" },
    ...overrides,
  };
}

const registration = (client: Client, overrides: Record<string, unknown> = {}) =>
  client({ method: "POST", url: "/api/v1/external-agents", payload: agentBody(overrides) });

async function register(client: Client, overrides: Record<string, unknown> = {}): Promise<string> {
  const response = await registration(client, overrides);
  expect(response.statusCode, response.body).toBe(201);
  return response.json().id as string;
}

const invoke = (client: Client, id: string, input = "ping") =>
  client({ method: "POST", url: `/api/v1/external-agents/${id}/invoke`, payload: { input } });

async function lineageRecord(client: Client, invocationId: string) {
  const response = await client({ method: "GET", url: `/api/v1/invocations/${invocationId}` });
  expect(response.statusCode, response.body).toBe(200);
  return response.json();
}

/** The invocation id of any invoke answer, success or error envelope. */
function invocationIdOf(response: LightMyRequestResponse): string {
  const body = response.json();
  return (body.invocation_id ?? body.error?.details?.invocation_id) as string;
}

/** A counter's value in the Prometheus exposition; 0 when the series has not appeared yet. */
async function metric(client: Client, series: string): Promise<number> {
  const response = await client({ method: "GET", url: "/metrics" });
  expect(response.statusCode).toBe(200);
  const line = response.body.split("\n").find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

/** Status and body of every answer whose status is not one of `expected`: [] when all are. */
function unexpectedAnswers(answers: LightMyRequestResponse[], expected: number[]): string[] {
  return answers
    .filter((answer) => !expected.includes(answer.statusCode))
    .map((answer) => `${answer.statusCode} ${answer.body}`);
}

function expectRefusedField(response: LightMyRequestResponse, field: string): void {
  expect(response.statusCode, response.body).toBe(400);
  const { error } = response.json();
  expect(error.code).toBe("VALIDATION_ERROR");
  expect(error.details.errors.map((problem: { field: string }) => problem.field)).toEqual([field]);
  expect(error.details.errors[0].message).toMatch(/private|loopback|non-public/);
}

/**
 * Rate-limit windows follow the wall clock (the pipeline's clock is not injectable from
 * outside). A burst that straddles a minute boundary may legitimately admit one call more
 * (the previous bucket's weight drops below 1 and the sliding count rounds down), so a
 * test that counts exact admissions starts with at least `neededMs` of its minute left.
 */
async function clearOfMinuteBoundary(neededMs: number): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < neededMs) await delay(left + 20);
}

describe("two Steward instances sharing PostgreSQL and Redis", () => {
  it("admits exactly the limit across both, counting down, and refuses the rest with 429", async () => {
    const id = await register(first, { rate_limit_config: { requests_per_minute: 5 } });
    const before = agent.requests.length;
    await clearOfMinuteBoundary(10_000);
    const answers: LightMyRequestResponse[] = [];
    for (let i = 0; i < 9; i++) answers.push(await invoke(i % 2 === 0 ? first : second, id));

    const records = await Promise.all(answers.map((answer) => lineageRecord(second, invocationIdOf(answer))));
    // Named in a failure: a decision that outlived its 50 ms deadline shows up as degraded.
    const outcomes = records
      .map((record) => `${record.status}${record.degraded ? " (degraded)" : ""}`)
      .join(", ");
    expect(
      answers.map((answer) => answer.statusCode),
      outcomes,
    ).toEqual([200, 200, 200, 200, 200, 429, 429, 429, 429]);
    const admitted = answers.slice(0, 5);
    expect(admitted.map((answer) => answer.headers["x-ratelimit-remaining"])).toEqual([
      "4",
      "3",
      "2",
      "1",
      "0",
    ]);
    for (const answer of admitted) expect(answer.headers["x-ratelimit-limit"]).toBe("5");
    expect(agent.requests.length - before).toBe(5);

    for (const refused of answers.slice(5)) {
      expect(refused.headers["x-ratelimit-limit"]).toBe("5");
      expect(refused.headers["x-ratelimit-remaining"]).toBe("0");
      const retryAfter = Number(refused.headers["retry-after"]);
      expect(Number.isInteger(retryAfter)).toBe(true);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(refused.json()).toEqual({
        error: {
          code: "RATE_LIMIT_EXCEEDED",
          message: expect.any(String),
          request_id: expect.any(String),
          details: expect.objectContaining({
            limit: 5,
            remaining: 0,
            reset_seconds: retryAfter,
            window: "minute",
          }),
        },
      });
    }
    // Every call is in the one lineage, whichever replica took it.
    expect(records.map((record) => record.status)).toEqual([
      ...Array<string>(5).fill("success"),
      ...Array<string>(4).fill("rate_limited"),
    ]);
  });

  it("never admits more than the limit to concurrent calls spread over both", async () => {
    const id = await register(second, { rate_limit_config: { requests_per_minute: 5 } });
    await clearOfMinuteBoundary(10_000);
    const answers = await Promise.all(
      Array.from({ length: 16 }, (_, i) => invoke(i % 2 === 0 ? first : second, id)),
    );
    expect(unexpectedAnswers(answers, [200, 429])).toEqual([]);
    const records = await Promise.all(answers.map((answer) => lineageRecord(first, invocationIdOf(answer))));
    const admitted = records.filter((record) => record.status === "success");
    // The script admits exactly 5. A call whose decision outlived the 50 ms deadline (a
    // stalled event loop on a loaded machine) is let through degraded, and flagged so.
    const degraded = admitted.filter((record) => record.degraded).length;
    expect(admitted.length - degraded, "admitted without degradation").toBeLessThanOrEqual(5);
    expect(admitted.length).toBeGreaterThanOrEqual(5);
    expect(admitted.length - 5, "admissions over the limit not flagged degraded").toBeLessThanOrEqual(
      degraded,
    );
  });

  it("settles concurrent calls on both replicas without a database error", async () => {
    // Every call reserves and settles the same agent and organization budget rows; the
    // two must lock them in one order, or PostgreSQL breaks the deadlock with a 500.
    const id = await register(first);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => invoke(i % 2 === 0 ? first : second, id)),
    );
    expect(unexpectedAnswers(answers, [200])).toEqual([]);
    const budget = await first({ method: "GET", url: `/api/v1/external-agents/${id}/budget` });
    expect(budget.json().monthly).toMatchObject({ reserved: 0, invocations: 20 });
  });
});

describe("outbound destinations refused when registered or changed (allow-list 127.0.0.1/32 only)", () => {
  const cases: Array<{
    name: string;
    field: string;
    base?: Record<string, unknown>;
    bad: Record<string, unknown>;
  }> = [
    {
      name: "a webhook_url at the cloud metadata address",
      field: "webhook_url",
      bad: { webhook_url: "http://169.254.169.254/latest" },
    },
    {
      name: "the metadata address written as an IPv4-mapped IPv6 address",
      field: "webhook_url",
      bad: { webhook_url: "http://[::ffff:a9fe:a9fe]/" },
    },
    {
      name: "a private slack platform_config.webhook_url",
      field: "platform_config.webhook_url",
      base: { platform: "slack", platform_config: { webhook_url: "http://127.0.0.1:9/ok", channel: "#ops" } },
      bad: { platform_config: { webhook_url: "http://10.0.0.1/x", channel: "#ops" } },
    },
    {
      name: "an oauth2 auth_config.token_url in carrier-grade NAT space",
      field: "auth_config.token_url",
      bad: {
        auth_type: "oauth2",
        auth_config: {
          client_id: "steward",
          client_secret: "oauth-secret-5150",
          token_url: "http://100.64.0.1/token",
        },
      },
    },
  ];

  it.each(cases)("refuses at registration $name", async ({ field, base, bad }) => {
    expectRefusedField(await registration(first, { ...base, ...bad }), field);
  });

  it.each(cases)("refuses on update $name", async ({ field, base, bad }) => {
    const id = await register(first, base);
    const response = await first({ method: "PATCH", url: `/api/v1/external-agents/${id}`, payload: bad });
    expectRefusedField(response, field);
  });

  it("still accepts the allowed loopback address, so the refusals above are about the address", async () => {
    expect((await registration(first)).statusCode).toBe(201);
  });
});

describe("redirects from an agent", () => {
  it.each([301, 302, 303, 307, 308])(
    "are not followed: HTTP %i is a 502 and the target is not called",
    async (status) => {
      const redirector = await startMockAgent(() => ({ status, headers: { location: canary.url } }));
      try {
        const id = await register(first, { webhook_url: redirector.url });
        const response = await invoke(first, id);
        expect(response.statusCode, response.body).toBe(502);
        expect(response.json().error).toMatchObject({
          code: "UPSTREAM_ERROR",
          details: { upstream_status: status, attempts: 1 },
        });
        expect((await lineageRecord(first, invocationIdOf(response))).error).toMatch(/redirect/);
        expect(redirector.requests).toHaveLength(1);
        expect(canary.requests).toHaveLength(0);
      } finally {
        await redirector.close();
      }
    },
  );
});

describe("Redis unreachable mid-test, fail mode open", () => {
  let proxy: TcpProxy;
  let steward: Client;

  beforeAll(async () => {
    proxy = await TcpProxy.open(TEST_REDIS_URL);
    closers.push(() => proxy.stop());
    const t = await started(
      "postgres",
      invokeEnv({ REDIS_URL: proxy.urlFor(TEST_REDIS_URL), STEWARD_RATE_LIMIT_TIMEOUT_MS: "50" }),
    );
    steward = as(t, t.adminKey);
  });

  // How soon a decision gives up on Redis is the limiter's own test (rate-limiter.redis.test.ts).
  it("answers and records degraded calls while Redis is away, and limits again once it is back", async () => {
    const limited = await register(steward, { rate_limit_config: { requests_per_minute: 2 } });
    // Answers with X-RateLimit headers exactly when the limiter reached Redis.
    const probe = await register(steward, { rate_limit_config: { requests_per_hour: 10_000 } });
    const openSeries = 'steward_rate_limiter_unavailable_total{mode="open"}';
    await clearOfMinuteBoundary(RECOVERY_MS + 5_000);

    const before = await invoke(steward, limited);
    expect(before.statusCode, before.body).toBe(200);
    expect(before.headers["x-ratelimit-remaining"]).toBe("1");
    expect(await lineageRecord(steward, invocationIdOf(before))).toMatchObject({
      degraded: false,
      degraded_reasons: [],
    });
    const unavailableBefore = await metric(steward, openSeries);

    await proxy.stop();
    for (let i = 0; i < 3; i++) {
      const response = await invoke(steward, limited);
      expect(response.statusCode, response.body).toBe(200);
      // The remaining count is unknown while Redis is away: no header claims one.
      expect(response.headers["x-ratelimit-remaining"]).toBeUndefined();
      const record = await lineageRecord(steward, invocationIdOf(response));
      expect(record.status).toBe("success");
      expect(record.degraded).toBe(true);
      expect(record.degraded_reasons).toContain("rate_limiter_unavailable");
      expect(record.governance.rate_limit).toMatchObject({ allowed: true, degraded: true });
    }
    expect(await metric(steward, openSeries)).toBeGreaterThanOrEqual(unavailableBefore + 3);

    await proxy.start();
    const deadline = Date.now() + RECOVERY_MS;
    for (;;) {
      const answer = await invoke(steward, probe);
      expect(answer.statusCode, answer.body).toBe(200);
      if (answer.headers["x-ratelimit-limit"] !== undefined) break;
      if (Date.now() > deadline)
        throw new Error(`the limiter did not use Redis again within ${RECOVERY_MS} ms`);
      await delay(100);
    }

    // The call before the outage still counts; those during it were not counted.
    const last = await invoke(steward, limited);
    expect(last.statusCode, last.body).toBe(200);
    expect(last.headers["x-ratelimit-remaining"]).toBe("0");
    const refused = await invoke(steward, limited);
    expect(refused.statusCode, refused.body).toBe(429);
    expect(refused.json().error).toMatchObject({
      code: "RATE_LIMIT_EXCEEDED",
      details: { limit: 2, remaining: 0 },
    });
    expect(await lineageRecord(steward, invocationIdOf(refused))).toMatchObject({ degraded: false });
  });
});

describe("Redis unreachable, fail mode closed", () => {
  let proxy: TcpProxy;
  let steward: Client;

  beforeAll(async () => {
    proxy = await TcpProxy.open(TEST_REDIS_URL);
    closers.push(() => proxy.stop());
    // Started with Redis up, so start-up does not wait out its readiness deadline.
    const t = await started(
      "postgres",
      invokeEnv({
        REDIS_URL: proxy.urlFor(TEST_REDIS_URL),
        STEWARD_RATE_LIMIT_FAIL_MODE: "closed",
        STEWARD_RATE_LIMIT_TIMEOUT_MS: "50",
      }),
    );
    steward = as(t, t.adminKey);
  });

  it("refuses with 503 SERVICE_UNAVAILABLE in the error envelope and calls no agent", async () => {
    const id = await register(steward, {
      webhook_url: canary.url,
      rate_limit_config: { requests_per_minute: 100 },
    });
    await proxy.stop();
    for (let i = 0; i < 2; i++) {
      const response = await invoke(steward, id);
      expect(response.statusCode, response.body).toBe(503);
      const invocationId = response.headers["x-invocation-id"];
      expect(response.json()).toEqual({
        error: {
          code: "SERVICE_UNAVAILABLE",
          message: "Steward could not complete the call (rate limiting unavailable)",
          request_id: expect.any(String),
          details: { invocation_id: invocationId, trace_id: expect.any(String) },
        },
      });
      const record = await steward({ method: "GET", url: `/api/v1/invocations/${invocationId}` });
      expect(record.json()).toMatchObject({ status: "error", error: "rate limiting unavailable" });
    }
    expect(canary.requests).toHaveLength(0);
    expect(
      await metric(steward, 'steward_rate_limiter_unavailable_total{mode="closed"}'),
    ).toBeGreaterThanOrEqual(2);

    // Refused calls are still in lineage, marked as not having reached the agent.
    const list = await steward({ method: "GET", url: `/api/v1/external-agents/${id}/invocations` });
    expect(list.statusCode, list.body).toBe(200);
    const records = list.json().items as Array<{
      status: string;
      error: string | null;
      response: { status: unknown };
    }>;
    expect(records).toHaveLength(2);
    for (const record of records) {
      // Steward's own failure, not the agent's: status error, and no platform notice.
      expect(record.status).toBe("error");
      expect(record.error).toMatch(/rate limit/i);
      expect(record.response.status).toBeNull();
    }
  });
});

describe("SSRF through DNS (no private networks allowed)", () => {
  const REFUSED_NAME = "agent.steward-test";
  const REBINDING_NAME = "rebind.steward-test";
  let dns: TestDnsServer;
  let steward: Client;

  beforeAll(async () => {
    dns = await startDnsServer({
      [`${REFUSED_NAME}.`]: ["127.0.0.1"],
      [`${REBINDING_NAME}.`]: [PUBLIC_ADDRESS],
    });
    closers.push(() => dns.close());
    // "" counts as unset: invokeEnv's allowance of 127.0.0.1 is withdrawn.
    const t = await started(
      "postgres",
      invokeEnv({ STEWARD_ALLOW_PRIVATE_NETWORKS: "", STEWARD_DNS_SERVERS: dns.address }),
    );
    steward = as(t, t.adminKey);
  });

  const urlAt = (host: string) => `http://${host}:${new URL(canary.url).port}/invoke`;

  it("refuses at registration a name that resolves to a loopback address", async () => {
    const response = await registration(steward, {
      webhook_url: urlAt(REFUSED_NAME),
      auth_type: "none",
      auth_config: {},
    });
    expectRefusedField(response, "webhook_url");
    expect(dns.queries).toContain(REFUSED_NAME);
  });

  it("refuses at connect time a name that now resolves to loopback (DNS rebinding)", async () => {
    const id = await register(steward, {
      webhook_url: urlAt(REBINDING_NAME),
      auth_type: "none",
      auth_config: {},
    });
    const askedBefore = dns.queries.filter((name) => name === REBINDING_NAME).length;

    dns.setRecords(REBINDING_NAME, ["127.0.0.1"]);
    const response = await invoke(steward, id);
    expect(response.statusCode, response.body).toBe(502);
    expect(response.json().error).toMatchObject({ code: "UPSTREAM_ERROR", details: { attempts: 1 } });
    const record = await lineageRecord(steward, invocationIdOf(response));
    expect(record.status).toBe("failure");
    expect(record.error).toMatch(/SSRF guard/);
    // The name was asked again at connect time, and the answer it got was refused.
    expect(dns.queries.filter((name) => name === REBINDING_NAME).length).toBeGreaterThan(askedBefore);
    expect(canary.requests).toHaveLength(0);
  });
});

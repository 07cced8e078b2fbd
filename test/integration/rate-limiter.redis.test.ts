import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  type LimitSpec,
  RateLimiterUnavailableError,
  type WindowName,
} from "../../src/governance/rate-limit/rate-limiter.js";
import { MemoryRateLimiter } from "../../src/governance/rate-limit/rate-limiter.memory.js";
import { createRedisClient, RedisRateLimiter } from "../../src/governance/rate-limit/rate-limiter.redis.js";
import { closedPort, TcpProxy } from "../helpers/tcp-proxy.js";

/** The real Redis of this machine; these tests fail, never skip, when it is missing. */
const REDIS_URL = process.env.STEWARD_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const PREFIX = `steward_test_${randomBytes(4).toString("hex")}:`;

const MINUTE = 60_000;
/** 2026-01-01T00:00:00Z: a minute, hour and day boundary at once. */
const T0 = Date.UTC(2026, 0, 1);
/** A bound on "answers promptly" that a loaded two-core CI machine still meets; not a benchmark. */
const PROMPTLY_MS = 1000;

let admin: Redis;
const opened: RedisRateLimiter[] = [];
let keyCounter = 0;

/** A key no other test uses, so tests do not share counts. */
const freshKey = (kind = "agent") => `${kind}:agt_${++keyCounter}`;

async function untilReady(redis: Redis, url: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (redis.status !== "ready") {
    if (Date.now() > deadline) throw new Error(`Redis at ${url} is not reachable (status ${redis.status})`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * For tests of what is decided rather than of the store's timeout: on a loaded CI machine
 * Redis can take longer than the limiter's 50 ms, and the call would fail open, degraded.
 */
const PATIENT = { timeoutMs: 5_000 };

async function limiterAt(
  url: string,
  options: { failMode?: "open" | "closed"; wait?: boolean; timeoutMs?: number } = {},
) {
  const redis = createRedisClient(url);
  const limiter = new RedisRateLimiter({
    redis,
    keyPrefix: PREFIX,
    failMode: options.failMode ?? "open",
    timeoutMs: options.timeoutMs,
  });
  opened.push(limiter);
  if (options.wait ?? true) await untilReady(redis, url);
  return { limiter, redis };
}

async function burst(limiter: RedisRateLimiter, specs: LimitSpec[], attempts: number, now: number) {
  let allowed = 0;
  for (let i = 0; i < attempts; i++) if ((await limiter.consume(specs, now)).allowed) allowed++;
  return allowed;
}

/** A TCP proxy in front of the real Redis, to stage outages without touching the server. */
async function redisProxy(): Promise<{ proxy: TcpProxy; url: string }> {
  const proxy = await TcpProxy.open(REDIS_URL);
  return { proxy, url: proxy.urlFor(REDIS_URL) };
}

beforeAll(async () => {
  admin = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 2000, retryStrategy: () => null });
  // The connect() rejection reports the failure; the event would only repeat it.
  admin.on("error", () => {});
  await admin.connect().catch((error: Error) => {
    throw new Error(`Redis at ${REDIS_URL} is not reachable (${error.message}); these tests need it`);
  });
});

afterAll(async () => {
  await Promise.all(opened.map((limiter) => limiter.close()));
  if (admin.status !== "ready") return;
  let cursor = "0";
  do {
    const [next, keys] = await admin.scan(cursor, "MATCH", `${PREFIX}*`, "COUNT", 1000);
    if (keys.length > 0) await admin.del(...keys);
    cursor = next;
  } while (cursor !== "0");
  await admin.quit();
});

describe("RedisRateLimiter against Redis", () => {
  it("allows exactly N calls in a window and refuses the next with the window's state", async () => {
    const { limiter } = await limiterAt(REDIS_URL, PATIENT);
    const key = freshKey();
    const spec: LimitSpec = { key, window: "minute", limit: 5 };
    expect(await burst(limiter, [spec], 5, T0 + 20_000)).toBe(5);
    expect(await limiter.consume([spec], T0 + 20_000)).toEqual({
      allowed: false,
      degraded: false,
      exceeded: { key, window: "minute", limit: 5, used: 5, remaining: 0, resetSeconds: 40 },
      tightest: { key, window: "minute", limit: 5, used: 5, remaining: 0, resetSeconds: 40 },
    });
    expect(await limiter.inspect([spec], T0 + 20_000)).toEqual([
      { key, window: "minute", limit: 5, used: 5, remaining: 0, resetSeconds: 40 },
    ]);
  });

  it("does not mistake a stalled event loop for an unavailable store", async () => {
    const { limiter } = await limiterAt(REDIS_URL, { failMode: "closed" });
    for (let i = 0; i < 10; i++) {
      const pending = limiter.consume([{ key: freshKey(), window: "minute", limit: 10 }], T0);
      // Busy for longer than the 50 ms timeout while Redis's answer arrives.
      const until = Date.now() + 80;
      while (Date.now() < until) {}
      await expect(pending).resolves.toMatchObject({ allowed: true, degraded: false });
    }
  });

  it("counts nothing when one window of several is full", async () => {
    const { limiter } = await limiterAt(REDIS_URL, PATIENT);
    const agent: LimitSpec = { key: freshKey(), window: "hour", limit: 10 };
    const alice: LimitSpec = { key: freshKey("user"), window: "minute", limit: 2 };
    expect(await burst(limiter, [agent, alice], 5, T0)).toBe(2);
    expect((await limiter.consume([agent, alice], T0)).exceeded).toMatchObject({
      key: alice.key,
      remaining: 0,
    });
    expect((await limiter.inspect([agent], T0))[0]?.used).toBe(2);
  });

  it("shares counts between replicas: two limiters on separate connections", async () => {
    const a = await limiterAt(REDIS_URL, PATIENT);
    const b = await limiterAt(REDIS_URL, PATIENT);
    const spec: LimitSpec = { key: freshKey(), window: "minute", limit: 6 };
    for (let i = 0; i < 3; i++) {
      expect((await a.limiter.consume([spec], T0)).allowed).toBe(true);
      expect((await b.limiter.consume([spec], T0)).allowed).toBe(true);
    }
    expect((await a.limiter.consume([spec], T0)).allowed).toBe(false);
    expect((await b.limiter.consume([spec], T0)).allowed).toBe(false);
  });

  it("never lets concurrent replicas take more than the limit together", async () => {
    const replicas = [
      await limiterAt(REDIS_URL, PATIENT),
      await limiterAt(REDIS_URL, PATIENT),
      await limiterAt(REDIS_URL, PATIENT),
    ];
    const spec: LimitSpec = { key: freshKey(), window: "hour", limit: 25 };
    const decisions = await Promise.all(
      Array.from({ length: 90 }, (_, i) => replicas[i % replicas.length]?.limiter.consume([spec], T0)),
    );
    expect(decisions.filter((decision) => decision?.allowed)).toHaveLength(25);
  });

  it("follows the caller's clock: the window slides and recovers", async () => {
    const { limiter } = await limiterAt(REDIS_URL, PATIENT);
    const spec: LimitSpec = { key: freshKey(), window: "minute", limit: 10 };
    expect(await burst(limiter, [spec], 15, T0)).toBe(10);
    expect(await burst(limiter, [spec], 15, T0 + MINUTE)).toBe(0);
    expect(await burst(limiter, [spec], 15, T0 + MINUTE + 30_000)).toBe(5);
    expect(await burst(limiter, [spec], 15, T0 + 3 * MINUTE)).toBe(10);
  });

  it("keeps one key per window bucket, expiring after two windows", async () => {
    const { limiter } = await limiterAt(REDIS_URL, PATIENT);
    const key = freshKey();
    await limiter.consume([{ key, window: "hour", limit: 3 }], T0);
    const redisKey = `${PREFIX}ratelimit:${key}:hour:${T0 / (60 * MINUTE)}`;
    expect(await admin.get(redisKey)).toBe("1");
    const ttl = await admin.ttl(redisKey);
    expect(ttl).toBeGreaterThan(7000);
    expect(ttl).toBeLessThanOrEqual(7200);
  });

  it("decides every call exactly as the memory limiter does", async () => {
    const { limiter } = await limiterAt(REDIS_URL, PATIENT);
    const step = fc.record({
      waitMs: fc.oneof(fc.constant(0), fc.nat(5_000), fc.nat(2 * 60 * MINUTE)),
      use: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 3, maxLength: 3 }),
        fc.array(step, { minLength: 1, maxLength: 60 }),
        async (limits, steps) => {
          const agent = freshKey();
          const windows: WindowName[] = ["minute", "hour", "day"];
          const specs = windows.map((window, i) => ({ key: agent, window, limit: limits[i] ?? 1 }));
          const memory = new MemoryRateLimiter();
          let now = T0;
          for (const { waitMs, use } of steps) {
            now += waitMs;
            const used = specs.filter((_, i) => use[i]);
            expect(await limiter.consume(used, now)).toEqual(await memory.consume(used, now));
          }
          expect(await limiter.inspect(specs, now)).toEqual(await memory.inspect(specs, now));
        },
      ),
      { numRuns: 25 },
    );
  });
});

describe("RedisRateLimiter with many calls in flight", () => {
  it("decides calls asked together exactly as the memory limiter decides them one after the other", async () => {
    const { limiter } = await limiterAt(REDIS_URL, PATIENT);
    const call = fc.record({
      waitMs: fc.oneof(fc.constant(0), fc.nat(30_000)),
      use: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 4, maxLength: 4 }),
        // Past 16 calls, a turn's calls span several script calls.
        fc.array(call, { minLength: 1, maxLength: 40 }),
        async (limits, calls) => {
          const agent = freshKey();
          const user = freshKey("user");
          const specs: LimitSpec[] = [
            { key: agent, window: "minute", limit: limits[0] ?? 1 },
            { key: agent, window: "hour", limit: limits[1] ?? 1 },
            { key: agent, window: "day", limit: limits[2] ?? 1 },
            { key: user, window: "minute", limit: limits[3] ?? 1 },
          ];
          let now = T0;
          const asked = calls.map(({ waitMs, use }) => {
            now += waitMs;
            return { specs: specs.filter((_, i) => use[i]), now };
          });
          const together = await Promise.all(asked.map((one) => limiter.consume(one.specs, one.now)));
          const memory = new MemoryRateLimiter();
          for (const [i, one] of asked.entries()) {
            expect(together[i]).toEqual(await memory.consume(one.specs, one.now));
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it("sends the calls of one event-loop turn in few script calls", async () => {
    const { limiter, redis } = await limiterAt(REDIS_URL, PATIENT);
    const scriptCalls = vi.spyOn(redis, "stewardRateLimitConsume");
    const spec: LimitSpec = { key: freshKey(), window: "minute", limit: 30 };
    const decisions = await Promise.all(Array.from({ length: 40 }, () => limiter.consume([spec], T0)));
    expect(decisions.filter((decision) => decision.allowed)).toHaveLength(30);
    // At most 16 decisions go in one script call, so a script never holds Redis up for long.
    expect(scriptCalls).toHaveBeenCalledTimes(3);
  });
});

describe("RedisRateLimiter when Redis is unreachable", () => {
  it("fails open promptly when nothing listens", async () => {
    const port = await closedPort();
    const { limiter } = await limiterAt(`redis://127.0.0.1:${port}`, { wait: false });
    const started = performance.now();
    const decision = await limiter.consume([{ key: freshKey(), window: "minute", limit: 1 }], T0);
    expect(performance.now() - started).toBeLessThan(PROMPTLY_MS);
    expect(decision).toEqual({ allowed: true, degraded: true });
  });

  /** A fail-open limiter reaching Redis through a proxy the test can pause, and the errors it reports. */
  async function openLimiterBehindProxy() {
    const { proxy, url: proxyUrl } = await redisProxy();
    const errors: unknown[] = [];
    const redis = createRedisClient(proxyUrl);
    const limiter = new RedisRateLimiter({
      redis,
      keyPrefix: PREFIX,
      failMode: "open",
      onStoreError: (error) => errors.push(error),
    });
    opened.push(limiter);
    await untilReady(redis, proxyUrl);
    return { proxy, limiter, errors };
  }

  it("fails open within the timeout when Redis stops answering on an open connection", async () => {
    const { proxy, limiter, errors } = await openLimiterBehindProxy();
    const spec: LimitSpec = { key: freshKey(), window: "minute", limit: 1 };
    expect((await limiter.consume([spec], T0)).degraded).toBe(false);
    proxy.pause();
    const started = performance.now();
    const decision = await limiter.consume([spec], T0);
    const elapsed = performance.now() - started;
    expect(decision).toEqual({ allowed: true, degraded: true });
    expect(elapsed).toBeGreaterThanOrEqual(45);
    expect(elapsed).toBeLessThan(PROMPTLY_MS);
    expect(String(errors[0])).toMatch(/did not answer within 50 ms/);
    await proxy.stop();
  });

  it("lets every call of a batch the store did not answer follow the fail mode, and reports each", async () => {
    const { proxy, limiter, errors } = await openLimiterBehindProxy();
    proxy.pause();
    const spec: LimitSpec = { key: freshKey(), window: "minute", limit: 1 };
    const decisions = await Promise.all(Array.from({ length: 20 }, () => limiter.consume([spec], T0)));
    expect(decisions).toEqual(Array.from({ length: 20 }, () => ({ allowed: true, degraded: true })));
    expect(errors).toHaveLength(20);
    await proxy.stop();
  });

  it("fails closed with RateLimiterUnavailableError, on a refused and on a silent connection", async () => {
    const port = await closedPort();
    const refused = await limiterAt(`redis://127.0.0.1:${port}`, { failMode: "closed", wait: false });
    const spec: LimitSpec = { key: freshKey(), window: "minute", limit: 1 };
    await expect(refused.limiter.consume([spec], T0)).rejects.toBeInstanceOf(RateLimiterUnavailableError);

    const { proxy, url: proxyUrl } = await redisProxy();
    const silent = await limiterAt(proxyUrl, { failMode: "closed" });
    proxy.pause();
    const started = performance.now();
    const error = await silent.limiter.consume([spec], T0).catch((caught: unknown) => caught);
    expect(performance.now() - started).toBeLessThan(PROMPTLY_MS);
    expect(error).toBeInstanceOf(RateLimiterUnavailableError);
    expect(error).toMatchObject({ code: "SERVICE_UNAVAILABLE" });
    await proxy.stop();
  });

  it("refuses to inspect rather than report unknown usage as zero", async () => {
    const port = await closedPort();
    const { limiter } = await limiterAt(`redis://127.0.0.1:${port}`, { wait: false });
    await expect(
      limiter.inspect([{ key: freshKey(), window: "minute", limit: 1 }], T0),
    ).rejects.toBeInstanceOf(RateLimiterUnavailableError);
  });

  it("answers fail-open while Redis is away and enforces limits again once it is back", async () => {
    const { proxy, url: proxyUrl } = await redisProxy();
    const { limiter, redis } = await limiterAt(proxyUrl);
    const spec: LimitSpec = { key: freshKey(), window: "minute", limit: 3 };
    expect(await burst(limiter, [spec], 2, T0)).toBe(2);

    await proxy.stop();
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      expect(await limiter.consume([spec], T0)).toEqual({ allowed: true, degraded: true });
      expect(performance.now() - started).toBeLessThan(PROMPTLY_MS);
    }

    await proxy.start();
    await untilReady(redis, proxyUrl);
    // The calls let through during the outage were not counted; the two before it were.
    expect(await limiter.consume([spec], T0)).toMatchObject({ allowed: true, degraded: false });
    expect(await limiter.consume([spec], T0)).toMatchObject({
      allowed: false,
      degraded: false,
      exceeded: { remaining: 0 },
    });
    await proxy.stop();
  });

  it("closes promptly even when Redis does not answer", async () => {
    const { proxy, url: proxyUrl } = await redisProxy();
    const { limiter } = await limiterAt(proxyUrl);
    proxy.pause();
    const started = performance.now();
    await limiter.close();
    expect(performance.now() - started).toBeLessThan(PROMPTLY_MS);
    await proxy.stop();
  });
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type LimitSpec,
  WINDOW_SECONDS,
  type WindowName,
} from "../../src/governance/rate-limit/rate-limiter.js";
import { MemoryRateLimiter } from "../../src/governance/rate-limit/rate-limiter.memory.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** 2026-01-01T00:00:00Z: a minute, hour and day boundary at once. */
const T0 = Date.UTC(2026, 0, 1);

const perMinute = (limit: number, key = "agent:agt_1"): LimitSpec => ({ key, window: "minute", limit });

/** Consumes `attempts` times at `now`; returns how many were allowed. */
async function burst(limiter: MemoryRateLimiter, specs: LimitSpec[], attempts: number, now: number) {
  let allowed = 0;
  for (let i = 0; i < attempts; i++) if ((await limiter.consume(specs, now)).allowed) allowed++;
  return allowed;
}

/** A few specs over agent and user keys; the same key never appears twice with one window. */
const specsArbitrary = fc
  .uniqueArray(
    fc.record({
      key: fc.constantFrom("agent:agt_1", "user:agt_1:alice", "user:agt_1:bob"),
      window: fc.constantFrom<WindowName>("minute", "hour", "day"),
      limit: fc.integer({ min: 1, max: 8 }),
    }),
    { minLength: 1, maxLength: 4, selector: (spec) => `${spec.key}:${spec.window}` },
  )
  .map((specs) => specs as LimitSpec[]);

/** Steps of a run: wait some time (up to three hours), then try a call under some of the specs. */
const stepsArbitrary = fc.array(
  fc.record({
    waitMs: fc.oneof(fc.constant(0), fc.nat(5_000), fc.nat(3 * HOUR)),
    use: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
  }),
  { minLength: 1, maxLength: 120 },
);

/**
 * The reference: every admitted call's time, kept forever, with bucket counts derived
 * from it directly. The limiter must match it without keeping the history.
 */
class HistoryModel {
  private readonly calls = new Map<string, number[]>();

  bucketCount(spec: LimitSpec, bucket: number): number {
    const windowMs = WINDOW_SECONDS[spec.window] * 1000;
    return (this.calls.get(`${spec.key}:${spec.window}`) ?? []).filter(
      (t) => Math.floor(t / windowMs) === bucket,
    ).length;
  }

  admits(specs: LimitSpec[], now: number): boolean {
    return specs.every((spec) => {
      const windowMs = WINDOW_SECONDS[spec.window] * 1000;
      const bucket = Math.floor(now / windowMs);
      const weight = 1 - (now - bucket * windowMs) / windowMs;
      return (
        Math.floor(this.bucketCount(spec, bucket - 1) * weight + this.bucketCount(spec, bucket)) < spec.limit
      );
    });
  }

  record(specs: LimitSpec[], now: number): void {
    for (const spec of specs) {
      const key = `${spec.key}:${spec.window}`;
      this.calls.set(key, [...(this.calls.get(key) ?? []), now]);
    }
  }
}

describe("MemoryRateLimiter", () => {
  it("allows exactly N calls of a burst from empty and refuses the next with the window's state", async () => {
    const limiter = new MemoryRateLimiter();
    const spec = perMinute(5);
    const start = T0 + 15_000;
    for (let i = 0; i < 5; i++) {
      const decision = await limiter.consume([spec], start);
      expect(decision).toMatchObject({
        allowed: true,
        degraded: false,
        tightest: { used: i + 1, remaining: 4 - i },
      });
    }
    expect(await limiter.consume([spec], start)).toEqual({
      allowed: false,
      degraded: false,
      exceeded: { key: "agent:agt_1", window: "minute", limit: 5, used: 5, remaining: 0, resetSeconds: 45 },
      tightest: { key: "agent:agt_1", window: "minute", limit: 5, used: 5, remaining: 0, resetSeconds: 45 },
    });
  });

  it("allows exactly N of a burst from empty for any limit, window and instant", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 60 }),
        fc.constantFrom<WindowName>("minute", "hour", "day"),
        fc.integer({ min: 0, max: 4_102_444_800_000 }),
        fc.nat(20),
        async (limit, window, now, extra) => {
          const limiter = new MemoryRateLimiter();
          expect(await burst(limiter, [{ key: "agent:agt_1", window, limit }], limit + extra, now)).toBe(
            limit,
          );
        },
      ),
    );
  });

  it("decides every call as the full call history would, counting across specs all-or-nothing", async () => {
    await fc.assert(
      fc.asyncProperty(
        specsArbitrary,
        stepsArbitrary,
        fc.integer({ min: T0, max: T0 + 400 * 24 * HOUR }),
        async (specs, steps, start) => {
          const limiter = new MemoryRateLimiter();
          const model = new HistoryModel();
          let now = start;
          for (const step of steps) {
            now += step.waitMs;
            const used = specs.filter((_, i) => step.use[i]);
            const expected = model.admits(used, now);
            const before = await limiter.inspect(specs, now);
            const decision = await limiter.consume(used, now);
            expect(decision.allowed).toBe(expected);
            if (expected) model.record(used, now);
            const after = await limiter.inspect(specs, now);
            for (const [i, spec] of specs.entries()) {
              const counted = decision.allowed && used.includes(spec) ? 1 : 0;
              expect(after[i]?.used).toBe(Math.min(spec.limit, (before[i]?.used ?? 0) + counted));
            }
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it("never admits more than the limit into one fixed bucket, nor twice the limit into any sliding window", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 10 }),
        fc.array(fc.nat(20_000), { minLength: 1, maxLength: 300 }),
        async (limit, gaps) => {
          const limiter = new MemoryRateLimiter();
          const admitted: number[] = [];
          let now = T0;
          for (const gap of gaps) {
            now += gap;
            if ((await limiter.consume([perMinute(limit)], now)).allowed) admitted.push(now);
          }
          const perBucket = new Map<number, number>();
          for (const t of admitted)
            perBucket.set(Math.floor(t / MINUTE), (perBucket.get(Math.floor(t / MINUTE)) ?? 0) + 1);
          for (const count of perBucket.values()) expect(count).toBeLessThanOrEqual(limit);
          for (const t of admitted) {
            expect(admitted.filter((u) => u > t - MINUTE && u <= t).length).toBeLessThanOrEqual(2 * limit);
          }
        },
      ),
    );
  });

  it("reports sane remaining and reset for the tightest window", async () => {
    await fc.assert(
      fc.asyncProperty(specsArbitrary, stepsArbitrary, async (specs, steps) => {
        const limiter = new MemoryRateLimiter();
        let now = T0;
        for (const step of steps) {
          now += step.waitMs;
          const { tightest } = await limiter.consume(specs, now);
          const states = await limiter.inspect(specs, now);
          expect(tightest?.remaining).toBe(Math.min(...states.map((state) => state.remaining)));
          for (const state of states) {
            expect(state.remaining).toBeGreaterThanOrEqual(0);
            expect(state.used + state.remaining).toBe(state.limit);
            expect(state.resetSeconds).toBeGreaterThanOrEqual(1);
            expect(state.resetSeconds).toBeLessThanOrEqual(WINDOW_SECONDS[state.window]);
          }
        }
      }),
      { numRuns: 50 },
    );
  });

  it("recovers as the window slides: half the calls halfway through the next minute, all of them after two", async () => {
    const limiter = new MemoryRateLimiter();
    const spec = perMinute(10);
    expect(await burst(limiter, [spec], 15, T0)).toBe(10);
    expect(await burst(limiter, [spec], 15, T0 + MINUTE)).toBe(0);
    expect(await burst(limiter, [spec], 15, T0 + MINUTE + 30_000)).toBe(5);
    expect(await burst(limiter, [spec], 15, T0 + 3 * MINUTE)).toBe(10);
  });

  it("counts nothing when one window of several is full", async () => {
    const limiter = new MemoryRateLimiter();
    const agent = perMinute(10, "agent:agt_1");
    const alice = perMinute(2, "user:agt_1:alice");
    const bob = perMinute(2, "user:agt_1:bob");
    expect(await burst(limiter, [agent, alice], 5, T0)).toBe(2);
    const refused = await limiter.consume([agent, alice], T0);
    expect(refused.exceeded).toMatchObject({ key: "user:agt_1:alice", remaining: 0 });
    expect(refused.tightest).toMatchObject({ key: "user:agt_1:alice", remaining: 0 });
    expect((await limiter.inspect([agent], T0))[0]?.used).toBe(2);
    expect(await burst(limiter, [agent, bob], 5, T0)).toBe(2);
    expect((await limiter.inspect([agent], T0))[0]?.used).toBe(4);
  });

  it("forgets nothing when the clock steps back", async () => {
    const limiter = new MemoryRateLimiter();
    expect(await burst(limiter, [perMinute(3)], 3, T0 + MINUTE + 1000)).toBe(3);
    expect(await burst(limiter, [perMinute(3)], 3, T0 + MINUTE - 1000)).toBe(0);
  });

  it("drops counters whose buckets have slid out, so memory stays bounded", async () => {
    const limiter = new MemoryRateLimiter();
    for (let user = 0; user < 100; user++) await limiter.consume([perMinute(1, `user:agt_1:u${user}`)], T0);
    await limiter.consume([{ key: "agent:agt_1", window: "day", limit: 1 }], T0);
    expect(limiter.size).toBe(101);
    await limiter.consume([], T0 + 2 * MINUTE);
    expect(limiter.size).toBe(1);
    await limiter.consume([], T0 + 2 * 24 * HOUR);
    expect(limiter.size).toBe(0);
  });

  it("inspects without counting, and allows anything without specs", async () => {
    const limiter = new MemoryRateLimiter();
    await limiter.inspect([perMinute(1)], T0);
    expect((await limiter.consume([perMinute(1)], T0)).allowed).toBe(true);
    expect(await limiter.consume([], T0)).toEqual({ allowed: true, degraded: false, tightest: undefined });
  });

  it("starts empty again after close", async () => {
    const limiter = new MemoryRateLimiter();
    await burst(limiter, [perMinute(1)], 1, T0);
    await limiter.close();
    expect(limiter.size).toBe(0);
  });
});

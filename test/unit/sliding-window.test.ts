import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type LimitSpec,
  WINDOW_SECONDS,
  type WindowName,
} from "../../src/governance/rate-limit/rate-limiter.js";
import {
  type BucketCounts,
  decide,
  NO_CALLS,
  slidingCount,
  windowPosition,
  windowState,
} from "../../src/governance/rate-limit/sliding-window.js";

const MINUTE = 60_000;
/** 2026-01-01T00:00:00Z: a minute, hour and day boundary at once. */
const EPOCH_DAY = Date.UTC(2026, 0, 1);

const windowName = fc.constantFrom<WindowName>("minute", "hour", "day");
/** Any instant from 1970 to about 2100, to the millisecond. */
const instant = fc.integer({ min: 0, max: 4_102_444_800_000 });
const limit = fc.integer({ min: 1, max: 200 });

/** Calls `decide` `attempts` times for one spec, counting admitted calls as a store would; returns how many got in. */
function burst(spec: LimitSpec, start: BucketCounts, attempts: number, now: number): number {
  const counts = { ...start };
  let admitted = 0;
  for (let i = 0; i < attempts; i++) {
    if (decide([{ spec, counts }], now).allowed) {
      counts.current++;
      admitted++;
    }
  }
  return admitted;
}

describe("windowPosition", () => {
  it("puts every instant in bucket floor(now / window) with a weight in (0, 1] and a reset within the window", () => {
    fc.assert(
      fc.property(windowName, instant, (window, now) => {
        const windowMs = WINDOW_SECONDS[window] * 1000;
        const { bucket, previousWeight, resetSeconds } = windowPosition(window, now);
        expect(bucket).toBe(Math.floor(now / windowMs));
        expect(bucket * windowMs).toBeLessThanOrEqual(now);
        expect(now).toBeLessThan((bucket + 1) * windowMs);
        expect(previousWeight).toBeGreaterThan(0);
        expect(previousWeight).toBeLessThanOrEqual(1);
        expect(Number.isInteger(resetSeconds)).toBe(true);
        expect(resetSeconds).toBeGreaterThanOrEqual(1);
        expect(resetSeconds).toBeLessThanOrEqual(WINDOW_SECONDS[window]);
      }),
    );
  });

  it("counts the whole previous bucket at a bucket's start and half of it halfway", () => {
    expect(windowPosition("minute", EPOCH_DAY)).toEqual({
      bucket: EPOCH_DAY / MINUTE,
      previousWeight: 1,
      resetSeconds: 60,
    });
    expect(windowPosition("hour", EPOCH_DAY + 30 * MINUTE)).toMatchObject({
      previousWeight: 0.5,
      resetSeconds: 1800,
    });
    expect(windowPosition("day", EPOCH_DAY + 18 * 60 * MINUTE)).toMatchObject({
      previousWeight: 0.25,
      resetSeconds: 6 * 3600,
    });
  });

  it("reports at least one second to reset in a bucket's last moments", () => {
    expect(windowPosition("minute", EPOCH_DAY + MINUTE - 1).resetSeconds).toBe(1);
    expect(windowPosition("minute", EPOCH_DAY + MINUTE - 1001).resetSeconds).toBe(2);
  });
});

describe("slidingCount", () => {
  it("weighs the previous bucket and rounds down to whole calls", () => {
    expect(slidingCount({ previous: 10, current: 3 }, 0.5)).toBe(8);
    expect(slidingCount({ previous: 10, current: 3 }, 0.49)).toBe(7);
    expect(slidingCount({ previous: 0, current: 4 }, 1)).toBe(4);
  });
});

describe("windowState", () => {
  it("keeps used within [0, limit] and used + remaining = limit", () => {
    fc.assert(
      fc.property(
        windowName,
        instant,
        limit,
        fc.nat(500),
        fc.nat(500),
        (window, now, max, previous, current) => {
          const state = windowState({ key: "agent:a", window, limit: max }, { previous, current }, now);
          expect(state.used).toBeGreaterThanOrEqual(0);
          expect(state.used).toBeLessThanOrEqual(max);
          expect(state.used + state.remaining).toBe(max);
        },
      ),
    );
  });

  it("reads a limit lowered below what was counted as full", () => {
    const state = windowState(
      { key: "agent:a", window: "minute", limit: 3 },
      { previous: 0, current: 9 },
      EPOCH_DAY,
    );
    expect(state).toEqual({
      key: "agent:a",
      window: "minute",
      limit: 3,
      used: 3,
      remaining: 0,
      resetSeconds: 60,
    });
  });
});

describe("decide", () => {
  it("admits exactly `limit` calls of a burst from empty, at any instant", () => {
    fc.assert(
      fc.property(windowName, instant, limit, fc.nat(50), (window, now, max, extra) => {
        expect(burst({ key: "agent:a", window, limit: max }, NO_CALLS, max + extra, now)).toBe(max);
      }),
    );
  });

  it("never lets the current bucket exceed the limit, and frees exactly the share of the previous one that slid out", () => {
    fc.assert(
      fc.property(windowName, instant, limit, fc.nat(250), (window, now, max, previousRaw) => {
        const previous = Math.min(previousRaw, max);
        const { previousWeight } = windowPosition(window, now);
        const admitted = burst(
          { key: "agent:a", window, limit: max },
          { previous, current: 0 },
          2 * max,
          now,
        );
        expect(admitted).toBeLessThanOrEqual(max);
        expect(admitted).toBe(Math.max(0, max - Math.floor(previous * previousWeight)));
      }),
    );
  });

  it("is all-or-nothing: allowed only if every window has room, and then every window counts the call", () => {
    const reading = fc.record({
      spec: fc.record({ key: fc.constantFrom("agent:a", "user:a:alice"), window: windowName, limit }),
      counts: fc.record({ previous: fc.nat(200), current: fc.nat(200) }),
    });
    fc.assert(
      fc.property(fc.array(reading, { minLength: 1, maxLength: 6 }), instant, (readings, now) => {
        const before = readings.map(({ spec, counts }) => windowState(spec, counts, now));
        const decision = decide(readings, now);
        expect(decision.degraded).toBe(false);
        expect(decision.allowed).toBe(before.every((state) => state.remaining >= 1));
        if (decision.allowed) {
          expect(decision.exceeded).toBeUndefined();
          const after = before.map((state) => ({
            ...state,
            used: state.used + 1,
            remaining: state.remaining - 1,
          }));
          expect(after).toContainEqual(decision.tightest);
          expect(decision.tightest?.remaining).toBe(Math.min(...after.map((state) => state.remaining)));
        } else {
          expect(decision.exceeded).toEqual(before.find((state) => state.remaining === 0));
          expect(decision.exceeded?.remaining).toBe(0);
          expect(decision.tightest?.remaining).toBe(0);
        }
      }),
    );
  });

  it("names the first full window as exceeded and the longest wait as tightest", () => {
    const decision = decide(
      [
        { spec: { key: "agent:a", window: "hour", limit: 100 }, counts: { previous: 0, current: 10 } },
        { spec: { key: "agent:a", window: "minute", limit: 5 }, counts: { previous: 0, current: 5 } },
        { spec: { key: "agent:a", window: "day", limit: 10 }, counts: { previous: 0, current: 10 } },
      ],
      EPOCH_DAY + 30_000,
    );
    expect(decision).toEqual({
      allowed: false,
      degraded: false,
      exceeded: { key: "agent:a", window: "minute", limit: 5, used: 5, remaining: 0, resetSeconds: 30 },
      tightest: { key: "agent:a", window: "day", limit: 10, used: 10, remaining: 0, resetSeconds: 86_370 },
    });
  });

  it("allows anything and reports no window when there are no limits", () => {
    expect(decide([], EPOCH_DAY)).toEqual({ allowed: true, degraded: false, tightest: undefined });
  });
});

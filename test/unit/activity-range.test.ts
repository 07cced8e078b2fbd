import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/errors.js";
import {
  ACTIVITY_BUCKETS,
  type ActivityBucket,
  MAX_ACTIVITY_BUCKETS,
  resolveActivityRange,
} from "../../src/governance/activity.js";

const STEP: Record<ActivityBucket, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };
const NOW = new Date("2024-06-04T10:30:15.500Z");

const bucket = fc.constantFrom(...ACTIVITY_BUCKETS);
/** Any instant from 1970 to about 2100, to the millisecond. */
const instant = fc.integer({ min: 0, max: 4_102_444_800_000 });
const steps = fc.integer({ min: -3, max: MAX_ACTIVITY_BUCKETS + 3 });
const offset = fc.integer({ min: 0, max: 86_399_999 });

function refusedField(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    return error.errors[0]?.field;
  }
}

describe("resolveActivityRange", () => {
  it("widens any range to the fewest whole UTC buckets covering it, or refuses it naming from", () => {
    fc.assert(
      // `to` from a few buckets before `from` to a few past the cap after it, off the grid.
      fc.property(instant, bucket, steps, offset, (fromMs, size, count, jitter) => {
        const step = STEP[size];
        const toMs = fromMs + count * step + (jitter % step);
        const query = {
          from: new Date(fromMs).toISOString(),
          to: new Date(toMs).toISOString(),
          bucket: size,
        };
        const buckets = Math.ceil(toMs / step) - Math.floor(fromMs / step);
        if (fromMs >= toMs || buckets > MAX_ACTIVITY_BUCKETS) {
          expect(refusedField(() => resolveActivityRange(query, NOW))).toBe("from");
          return;
        }
        const range = resolveActivityRange(query, NOW);
        expect(range.bucket).toBe(size);
        expect(range.from.getTime() % step).toBe(0);
        expect(range.to.getTime() % step).toBe(0);
        expect(range.from.getTime()).toBeLessThanOrEqual(fromMs);
        expect(range.from.getTime() + step).toBeGreaterThan(fromMs);
        expect(range.to.getTime()).toBeGreaterThanOrEqual(toMs);
        expect(range.to.getTime() - step).toBeLessThan(toMs);
        expect((range.to.getTime() - range.from.getTime()) / step).toBe(buckets);
      }),
    );
  });

  it("defaults to the last 24 hours by hour, and to the last hour by minute", () => {
    expect(resolveActivityRange({}, NOW)).toEqual({
      from: new Date("2024-06-03T10:00:00Z"),
      to: new Date("2024-06-04T11:00:00Z"),
      bucket: "hour",
    });
    expect(resolveActivityRange({ bucket: "minute" }, NOW)).toEqual({
      from: new Date("2024-06-04T09:30:00Z"),
      to: new Date("2024-06-04T10:31:00Z"),
      bucket: "minute",
    });
    expect(resolveActivityRange({ bucket: "day" }, NOW)).toEqual({
      from: new Date("2024-06-03T00:00:00Z"),
      to: new Date("2024-06-05T00:00:00Z"),
      bucket: "day",
    });
    expect(resolveActivityRange({ to: "2024-06-01T00:00:00Z" }, NOW)).toMatchObject({
      from: new Date("2024-05-31T00:00:00Z"),
      to: new Date("2024-06-01T00:00:00Z"),
    });
  });

  it("refuses a from after now when to is left out", () => {
    expect(refusedField(() => resolveActivityRange({ from: "2024-06-04T10:31:00Z" }, NOW))).toBe("from");
  });
});

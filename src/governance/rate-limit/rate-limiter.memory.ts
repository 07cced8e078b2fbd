import type { LimitSpec, RateLimitDecision, RateLimiter, WindowName, WindowState } from "./rate-limiter.js";
import { type BucketCounts, decide, NO_CALLS, windowPosition, windowState } from "./sliding-window.js";

/**
 * Counters in this process's memory: the embedded default, where one process serves
 * every call. Counters whose buckets have both slid out are swept as time passes, so
 * memory follows the number of keys active in the last two windows, not all ever seen.
 */

/** How often (in the caller's time) stale counters are swept. */
const SWEEP_INTERVAL_MS = 60_000;

interface Counter {
  window: WindowName;
  bucket: number;
  previous: number;
  current: number;
}

export class MemoryRateLimiter implements RateLimiter {
  private readonly counters = new Map<string, Counter>();
  private nextSweepAt = Number.NEGATIVE_INFINITY;

  async consume(specs: LimitSpec[], now = Date.now()): Promise<RateLimitDecision> {
    this.sweep(now);
    // Nothing awaits between reading and counting, so no other call can slip in between.
    const decision = decide(
      specs.map((spec) => ({ spec, counts: this.read(spec, now) })),
      now,
    );
    if (decision.allowed) for (const spec of specs) this.count(spec, now);
    return decision;
  }

  async inspect(specs: LimitSpec[], now = Date.now()): Promise<WindowState[]> {
    return specs.map((spec) => windowState(spec, this.read(spec, now), now));
  }

  async close(): Promise<void> {
    this.counters.clear();
  }

  /** Counters held: what this limiter's memory grows with. */
  get size(): number {
    return this.counters.size;
  }

  private read(spec: LimitSpec, now: number): BucketCounts {
    const counter = this.counters.get(counterKey(spec));
    return counter ? countsAt(counter, windowPosition(spec.window, now).bucket) : NO_CALLS;
  }

  private count(spec: LimitSpec, now: number): void {
    const key = counterKey(spec);
    const { bucket } = windowPosition(spec.window, now);
    const counter = this.counters.get(key) ?? { window: spec.window, bucket, previous: 0, current: 0 };
    const counts = countsAt(counter, bucket);
    counter.bucket = Math.max(counter.bucket, bucket);
    counter.previous = counts.previous;
    counter.current = counts.current + 1;
    this.counters.set(key, counter);
  }

  private sweep(now: number): void {
    if (now < this.nextSweepAt) return;
    this.nextSweepAt = now + SWEEP_INTERVAL_MS;
    for (const [key, counter] of this.counters) {
      if (windowPosition(counter.window, now).bucket - counter.bucket > 1) this.counters.delete(key);
    }
  }
}

/** The window is last in the key and has no colon, so no two specs share a counter. */
function counterKey(spec: LimitSpec): string {
  return `${spec.key}:${spec.window}`;
}

/**
 * A counter's buckets seen from `bucket`. A clock that stepped back is treated as
 * standing still, so no counted call is forgotten.
 */
function countsAt(counter: Counter, bucket: number): BucketCounts {
  const shift = bucket - counter.bucket;
  if (shift <= 0) return { previous: counter.previous, current: counter.current };
  if (shift === 1) return { previous: counter.current, current: 0 };
  return NO_CALLS;
}

import {
  type LimitSpec,
  type RateLimitDecision,
  WINDOW_SECONDS,
  type WindowName,
  type WindowState,
} from "./rate-limiter.js";

/**
 * The sliding-window counter both limiters apply. Each window keeps two fixed buckets,
 * the current one and the one before it; the previous bucket counts in proportion to
 * how much of it the sliding window still covers. Two integers per window instead of a
 * timestamp per call, at the price of assuming the previous bucket's calls were spread
 * evenly over it.
 */

/** Calls counted in the previous and the current fixed bucket of one window. */
export interface BucketCounts {
  previous: number;
  current: number;
}

export const NO_CALLS: BucketCounts = { previous: 0, current: 0 };

/** One spec with the bucket counts read for it before the call. */
export interface WindowReading {
  spec: LimitSpec;
  counts: BucketCounts;
}

/** Where an instant falls in a window. */
export interface WindowPosition {
  /** Index of the current fixed bucket: floor(now / window length). */
  bucket: number;
  /** Share of the previous bucket the sliding window still covers: 1 at the bucket's start, towards 0 at its end. */
  previousWeight: number;
  /** Whole seconds until the current bucket ends, at least 1. */
  resetSeconds: number;
}

/** Locates `now` (epoch milliseconds) in `window`. */
export function windowPosition(window: WindowName, now: number): WindowPosition {
  const windowMs = WINDOW_SECONDS[window] * 1000;
  const bucket = Math.floor(now / windowMs);
  const elapsed = now - bucket * windowMs;
  return {
    bucket,
    previousWeight: 1 - elapsed / windowMs,
    resetSeconds: Math.max(1, Math.ceil((windowMs - elapsed) / 1000)),
  };
}

/**
 * Whole calls the sliding window holds. Rounding down keeps a fresh window exact (a
 * burst of `limit` calls from empty fits, the next is refused) and lets a call in as
 * soon as a whole call's worth of the previous bucket has slid out. The Lua script in
 * rate-limiter.redis.ts repeats this expression; the two must stay identical.
 */
export function slidingCount(counts: BucketCounts, previousWeight: number): number {
  return Math.floor(counts.previous * previousWeight + counts.current);
}

/** A window's state before the call is counted. */
export function windowState(spec: LimitSpec, counts: BucketCounts, now: number): WindowState {
  const { previousWeight, resetSeconds } = windowPosition(spec.window, now);
  // Capped so that a limit lowered below what was already counted reads as full, not negative.
  const used = Math.min(spec.limit, slidingCount(counts, previousWeight));
  return {
    key: spec.key,
    window: spec.window,
    limit: spec.limit,
    used,
    remaining: spec.limit - used,
    resetSeconds,
  };
}

/** Decides one call from the counts read before it: every window admits it, or none counts it. */
export function decide(readings: WindowReading[], now: number): RateLimitDecision {
  const before = readings.map(({ spec, counts }) => windowState(spec, counts, now));
  const exceeded = before.find((state) => state.remaining < 1);
  if (exceeded) return { allowed: false, tightest: tightestOf(before), exceeded, degraded: false };
  const after = before.map((state) => ({ ...state, used: state.used + 1, remaining: state.remaining - 1 }));
  return { allowed: true, tightest: tightestOf(after), degraded: false };
}

/** The window with the fewest calls left; on a tie the longer wait, as waiting out the shorter one would not make room. */
function tightestOf(states: WindowState[]): WindowState | undefined {
  let tightest: WindowState | undefined;
  for (const state of states) {
    if (
      !tightest ||
      state.remaining < tightest.remaining ||
      (state.remaining === tightest.remaining && state.resetSeconds > tightest.resetSeconds)
    ) {
      tightest = state;
    }
  }
  return tightest;
}

import { AppError } from "../../errors.js";

/**
 * The rate limiter every governed invocation passes through. One interface, two
 * implementations: in memory for the embedded single process, Redis for replicas that
 * must share their counts. The counting rule itself lives in `sliding-window.ts`.
 */

export type WindowName = "minute" | "hour" | "day";

export const WINDOW_SECONDS: Record<WindowName, number> = { minute: 60, hour: 3600, day: 86400 };

/** One limit to enforce: `key` names what is counted (e.g. "agent:agt_…" or "user:agt_…:alice"). */
export interface LimitSpec {
  key: string;
  window: WindowName;
  limit: number;
}

export interface WindowState {
  key: string;
  window: WindowName;
  limit: number;
  used: number;
  remaining: number;
  resetSeconds: number;
}

export interface RateLimitDecision {
  allowed: boolean;
  /** The window with the fewest remaining calls after this decision; undefined when there are no specs. */
  tightest?: WindowState;
  /** The first window that refused the call (when !allowed and not degraded). */
  exceeded?: WindowState;
  /** True when the store could not be reached and the fail mode decided instead. */
  degraded: boolean;
}

export interface RateLimiter {
  /** Counts one call against every spec, all-or-nothing and atomically: if any window is full, nothing is counted. */
  consume(specs: LimitSpec[], now?: number): Promise<RateLimitDecision>;
  /** Usage of each spec without counting a call (for a governance status page). */
  inspect(specs: LimitSpec[], now?: number): Promise<WindowState[]>;
  close(): Promise<void>;
}

/**
 * The counter store did not answer in time. Thrown by `consume` in fail mode "closed"
 * (and by `inspect` in either mode); it carries SERVICE_UNAVAILABLE so the one error
 * handler answers 503 without the invoke pipeline mapping it.
 */
export class RateLimiterUnavailableError extends AppError {
  constructor(cause: unknown) {
    super("SERVICE_UNAVAILABLE", "rate limiting is temporarily unavailable; try again shortly");
    this.name = "RateLimiterUnavailableError";
    this.cause = cause;
  }
}

import { Counter, collectDefaultMetrics, Registry } from "prom-client";

/** Counters the invoke pipeline updates. */
export interface InvocationMetrics {
  invocations: Counter<"status">;
  rateLimiterUnavailable: Counter<"mode">;
}

export interface Metrics extends InvocationMetrics {
  registry: Registry;
  /** Executor jobs: received, completed, failed, cancelled, redelivered, dead_lettered. */
  jobs: Counter<"event">;
}

/** One registry per Steward instance (tests run several in one process). */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "steward_" });
  return {
    registry,
    invocations: new Counter({
      name: "steward_invocations_total",
      help: "Invocations by final status",
      labelNames: ["status"],
      registers: [registry],
    }),
    jobs: new Counter({
      name: "steward_jobs_total",
      help: "Executor jobs by event: received, completed, failed, cancelled, redelivered, dead_lettered",
      labelNames: ["event"],
      registers: [registry],
    }),
    rateLimiterUnavailable: new Counter({
      name: "steward_rate_limiter_unavailable_total",
      help: "Decisions taken by the fail mode because the rate-limit store did not answer in time",
      labelNames: ["mode"],
      registers: [registry],
    }),
  };
}

import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";

/** What governance decided for a new call; answering an earlier call again decides nothing. */
export type GovernanceOutcome =
  | "allowed"
  | "rate_limited"
  | "budget_exceeded"
  | "policy_denied"
  | "pending_approval";

/** Counters the invoke pipeline updates. */
export interface InvocationMetrics {
  invocations: Counter<"status">;
  governanceDecisions: Counter<"outcome">;
  rateLimiterUnavailable: Counter<"mode">;
}

/** The counter the delivery worker updates. */
export interface DeliveryMetrics {
  /** The state a delivery reaches after each attempt: delivered, failed (retry due) or dead. */
  deliveries: Counter<"state">;
}

export interface Metrics extends InvocationMetrics, DeliveryMetrics {
  registry: Registry;
  /** Executor jobs: received, completed, failed, cancelled, redelivered, dead_lettered. */
  jobs: Counter<"event">;
  /** Labelled by route template, never by raw URL: one series per route, not per id. */
  httpRequestDuration: Histogram<"method" | "route" | "status_code">;
}

/** From a cache-fast answer (well under a millisecond) to an agent call near its timeout. */
const HTTP_DURATION_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

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
    governanceDecisions: new Counter({
      name: "steward_governance_decisions_total",
      help: "Governance decisions on new invocations: allowed, rate_limited, budget_exceeded, policy_denied, pending_approval",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    deliveries: new Counter({
      name: "steward_deliveries_total",
      help: "States deliveries reached after an attempt: delivered, failed (a retry is due), dead",
      labelNames: ["state"],
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
    httpRequestDuration: new Histogram({
      name: "steward_http_request_duration_seconds",
      help: "HTTP request latency by method, route template and status code",
      labelNames: ["method", "route", "status_code"],
      buckets: HTTP_DURATION_BUCKETS_SECONDS,
      registers: [registry],
    }),
  };
}

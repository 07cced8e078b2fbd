import autocannon from "autocannon";
import { Pool } from "undici";
import type { BenchProcess } from "./child.js";
import { percentile } from "./stats.js";

/** A request every contender gets alike: the same POST with a 300-byte JSON body. */
export interface Target {
  url: string;
  headers?: Record<string, string>;
  /** The process answering `url`, whose CPU time is counted. */
  server: BenchProcess;
}

export const INVOKE_BODY = JSON.stringify({ input: "x".repeat(264), context: { ticket: 42 } });

export interface ThroughputRound {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Connection errors, timeouts and answers other than 2xx. */
  errors: number;
  ok: number;
  /** Requests sent, including those still unanswered when the round ended. */
  sent: number;
  /** CPU the server under test used per answered request, in ms (its own process only). */
  cpuMsPerRequest: number;
}

/** One autocannon round against `target`. */
export async function throughputRound(
  target: Target,
  connections: number,
  seconds: number,
): Promise<ThroughputRound> {
  const cpuBefore = target.server.cpuSeconds();
  const result = await autocannon({
    url: target.url,
    method: "POST",
    connections,
    duration: seconds,
    headers: { "content-type": "application/json", ...target.headers },
    body: INVOKE_BODY,
  });
  return {
    requestsPerSecond: result["2xx"] / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    ok: result["2xx"],
    sent: result.requests.sent,
    cpuMsPerRequest: ((target.server.cpuSeconds() - cpuBefore) * 1000) / Math.max(1, result["2xx"]),
  };
}

export interface LatencySample {
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

/**
 * Sequential calls over one connection for `seconds`, timed with the high-resolution clock
 * (autocannon's histogram counts whole milliseconds, too coarse for added latency).
 */
export async function sequentialLatency(target: Target, seconds: number): Promise<LatencySample> {
  const url = new URL(target.url);
  const pool = new Pool(url.origin, { connections: 1 });
  const samples: number[] = [];
  let errors = 0;
  const warmUntil = performance.now() + 500;
  const end = warmUntil + seconds * 1000;
  try {
    while (performance.now() < end) {
      const start = performance.now();
      const answer = await pool.request({
        method: "POST",
        path: url.pathname,
        headers: { "content-type": "application/json", ...target.headers },
        body: INVOKE_BODY,
      });
      await answer.body.dump();
      if (answer.statusCode < 200 || answer.statusCode > 299) errors++;
      if (start >= warmUntil) samples.push(performance.now() - start);
    }
  } finally {
    await pool.close();
  }
  return { p50Ms: percentile(samples, 50), p99Ms: percentile(samples, 99), errors };
}

import { pooledRandomBytes } from "../crypto/random-pool.js";

/** W3C Trace Context for one invocation: continue the caller's trace, or start one. */
export interface TraceContext {
  traceId: string;
  spanId: string;
  /** The caller's span, when it sent a valid `traceparent`. */
  parentSpanId: string | null;
  sampled: boolean;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ALL_ZERO = /^0+$/;

export function continueTrace(traceparent: string | undefined): TraceContext {
  const spanId = pooledRandomBytes(8).toString("hex");
  const match = traceparent ? TRACEPARENT.exec(traceparent.trim().toLowerCase()) : null;
  // Version ff is forbidden and all-zero ids are invalid: such a header starts a new trace.
  if (
    match &&
    match[1] !== "ff" &&
    !ALL_ZERO.test(match[2] as string) &&
    !ALL_ZERO.test(match[3] as string)
  ) {
    return {
      traceId: match[2] as string,
      spanId,
      parentSpanId: match[3] as string,
      sampled: (Number.parseInt(match[4] as string, 16) & 1) === 1,
    };
  }
  return { traceId: pooledRandomBytes(16).toString("hex"), spanId, parentSpanId: null, sampled: true };
}

/** The `traceparent` Steward sends on, naming its own span as the parent. */
export function formatTraceparent(trace: TraceContext): string {
  return `00-${trace.traceId}-${trace.spanId}-${trace.sampled ? "01" : "00"}`;
}

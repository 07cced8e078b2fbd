import type { InvocationRow } from "../db/schema.js";
import { AppError } from "../errors.js";

/**
 * The HTTP answer to an invocation, derived from its final row alone — so a call
 * replayed through its Idempotency-Key gets exactly the answer the first one got.
 */

/** What the pipeline keeps in `invocations.governance` about each step. */
export interface GovernanceRecord {
  policy?: {
    allowed: boolean;
    reason: string;
    matched_policies: Array<{ id: string; name: string; effect: string }>;
  };
  rate_limit?: {
    allowed: boolean;
    degraded: boolean;
    window?: string;
    limit?: number;
    remaining?: number;
    reset_seconds?: number;
  };
  budget?: {
    allowed: boolean;
    degraded: boolean;
    estimated_cost: number;
    exceeded?: Record<string, unknown>;
  };
  approval?: { required: boolean; approval_id?: string; reasons?: string[]; expires_at?: string };
  upstream?: { attempts: number };
}

export interface InvokeSuccess {
  invocation_id: string;
  trace_id: string;
  status: string;
  output: unknown;
  cost_usd: number;
  duration_ms: number;
  metadata: Record<string, unknown>;
}

export interface PendingApprovalBody {
  invocation_id: string;
  approval_id?: string;
  status: "pending_approval";
  reasons: string[];
  expires_at?: string;
}

/** 200 and 202 carry a body; every other outcome is an error for the one error envelope. */
export type InvokeAnswer = { headers: Record<string, string> } & (
  | { statusCode: 200; body: InvokeSuccess }
  | { statusCode: 202; body: PendingApprovalBody }
  | { statusCode: number; error: AppError }
);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The agent's answer: its `result` or `output` field when it has one, else the whole body. */
export function outputOf(body: unknown): unknown {
  if (isObject(body)) {
    if ("result" in body) return body.result;
    if ("output" in body) return body.output;
  }
  return body;
}

export function answerFor(row: InvocationRow): InvokeAnswer {
  const governance = row.governance as GovernanceRecord;
  const headers: Record<string, string> = {
    "x-invocation-id": row.id,
    traceparent: `00-${row.traceId}-${row.spanId}-01`,
  };
  const limit = governance.rate_limit;
  if (limit?.limit !== undefined && limit.remaining !== undefined && limit.reset_seconds !== undefined) {
    headers["x-ratelimit-limit"] = String(limit.limit);
    headers["x-ratelimit-remaining"] = String(limit.remaining);
    headers["x-ratelimit-reset"] = String(limit.reset_seconds);
  }
  const ids = { invocation_id: row.id, trace_id: row.traceId };
  const fail = (statusCode: number, error: AppError): InvokeAnswer => ({ statusCode, headers, error });

  switch (row.status) {
    case "success": {
      const body = row.responseBody;
      return {
        statusCode: 200,
        headers,
        body: {
          ...ids,
          status: row.status,
          output: outputOf(body),
          cost_usd: row.costUsd ?? 0,
          duration_ms: row.durationMs ?? 0,
          metadata: isObject(body) && isObject(body.metadata) ? body.metadata : {},
        },
      };
    }
    case "pending_approval":
      return {
        statusCode: 202,
        headers,
        body: {
          invocation_id: row.id,
          approval_id: governance.approval?.approval_id,
          status: "pending_approval",
          reasons: governance.approval?.reasons ?? [],
          expires_at: governance.approval?.expires_at,
        },
      };
    case "policy_denied":
      return fail(
        403,
        new AppError(
          "POLICY_DENIED",
          `Denied by policy: ${governance.policy?.reason ?? "no policy allows this call"}`,
          {
            ...ids,
            reason: governance.policy?.reason,
            matched_policies: governance.policy?.matched_policies ?? [],
          },
        ),
      );
    case "rate_limited":
      headers["retry-after"] = String(limit?.reset_seconds ?? 1);
      return fail(
        429,
        new AppError(
          "RATE_LIMIT_EXCEEDED",
          `Rate limit of ${limit?.limit} calls per ${limit?.window} reached`,
          {
            ...ids,
            limit: limit?.limit,
            remaining: limit?.remaining,
            reset_seconds: limit?.reset_seconds,
            window: limit?.window,
          },
        ),
      );
    case "budget_exceeded":
      return fail(
        402,
        new AppError("BUDGET_EXCEEDED", "Budget exceeded", {
          ...ids,
          ...(governance.budget?.exceeded ?? {}),
        }),
      );
    case "error":
      return fail(
        503,
        new AppError(
          "SERVICE_UNAVAILABLE",
          `Steward could not complete the call${row.errorMessage ? ` (${row.errorMessage})` : ""}`,
          { ...ids },
        ),
      );
    case "timeout":
      return fail(504, new AppError("UPSTREAM_TIMEOUT", "The agent did not answer in time", { ...ids }));
    case "failure":
      return fail(
        502,
        new AppError("UPSTREAM_ERROR", `The agent call failed: ${row.errorMessage ?? "unknown error"}`, {
          ...ids,
          upstream_status: row.responseStatus,
          attempts: governance.upstream?.attempts,
        }),
      );
    default:
      return fail(
        409,
        new AppError("CONFLICT", "A call with this Idempotency-Key is still in progress", { ...ids }),
      );
  }
}

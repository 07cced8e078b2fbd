import type { InvocationRow } from "../db/schema.js";
import type { AppError, ErrorCode } from "../errors.js";
import { STATUS_BY_CODE } from "../http/error-handler.js";
import type { InvokeBody } from "../invocation/invocation.service.js";
import { answerFor, type GovernanceRecord, outputOf } from "../invocation/invocation-response.js";
import { RPC_ERRORS, type RpcError } from "./a2a-server-rpc.js";

/**
 * A governed call's record as A2A v0.3 objects: a Message when it answered, a Task
 * while it waits for approval (and, through `tasks/get`, after), a JSON-RPC error
 * when governance refused it.
 */

export type A2aPart = { kind: "text"; text: string } | { kind: "data"; data: Record<string, unknown> };

export interface A2aMessage {
  kind: "message";
  messageId: string;
  role: "agent";
  parts: A2aPart[];
  contextId: string;
  taskId?: string;
  metadata?: Record<string, unknown>;
}

export type A2aTaskState = "working" | "input-required" | "completed" | "rejected" | "failed";

export interface A2aTask {
  kind: "task";
  id: string;
  contextId: string;
  status: { state: A2aTaskState; message?: A2aMessage; timestamp: string };
  artifacts?: Array<{ artifactId: string; name: string; parts: A2aPart[] }>;
  metadata: Record<string, unknown>;
}

export type A2aAnswer = { result: A2aMessage | A2aTask; headers: Record<string, string> } | A2aRefusal;

export interface A2aRefusal {
  httpStatus: number;
  headers: Record<string, string>;
  error: RpcError;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A string output as text; an object as data; anything else as data under `output`. */
function outputPart(output: unknown): A2aPart {
  if (typeof output === "string") return { kind: "text", text: output };
  return { kind: "data", data: isObject(output) ? output : { output } };
}

/** The conversation a call belongs to: the one its message named, else the call itself. */
export function contextIdOf(row: InvocationRow): string {
  const a2a = (row.requestBody as InvokeBody | null)?.metadata?.a2a;
  const given = isObject(a2a) ? a2a.context_id : undefined;
  return typeof given === "string" ? given : row.id;
}

function stewardMetadata(row: InvocationRow, extra: Record<string, unknown> = {}) {
  return { steward: { invocation_id: row.id, trace_id: row.traceId, ...extra } };
}

function agentMessage(row: InvocationRow, suffix: string, parts: A2aPart[], taskId?: string): A2aMessage {
  return {
    kind: "message",
    messageId: `${row.id}:${suffix}`,
    role: "agent",
    parts,
    contextId: contextIdOf(row),
    ...(taskId ? { taskId } : {}),
    metadata: stewardMetadata(row),
  };
}

/** What a task's status message says in each state; the approval's id and reasons when one waits. */
function statusText(row: InvocationRow): string {
  const approval = (row.governance as GovernanceRecord).approval;
  switch (row.status) {
    case "pending_approval": {
      const reasons = approval?.reasons?.length ? ` (${approval.reasons.join("; ")})` : "";
      return `Waiting for a person to approve this call in Steward, approval ${approval?.approval_id ?? "pending"}${reasons}. Poll tasks/get for the outcome.`;
    }
    case "running":
      return "The call is under way.";
    case "success":
      return "Completed.";
    case "approval_rejected":
      return "The approval was rejected; the agent was not called.";
    case "approval_expired":
      return "No one decided on the approval in time; the agent was not called.";
    case "timeout":
      return "The agent did not answer in time.";
    default:
      return row.errorMessage
        ? `The call ended as ${row.status}: ${row.errorMessage}`
        : `The call ended as ${row.status}.`;
  }
}

function taskState(status: string): A2aTaskState {
  switch (status) {
    case "pending_approval":
      return "input-required";
    case "running":
      return "working";
    case "success":
      return "completed";
    case "approval_rejected":
    case "approval_expired":
    case "policy_denied":
    case "rate_limited":
    case "budget_exceeded":
      return "rejected";
    default:
      return "failed";
  }
}

/** The call as an A2A Task: its id is the invocation id; a success carries the output as the `output` artifact. */
export function taskFor(row: InvocationRow): A2aTask {
  const approval = (row.governance as GovernanceRecord).approval;
  const state = taskState(row.status);
  return {
    kind: "task",
    id: row.id,
    contextId: contextIdOf(row),
    status: {
      state,
      message: agentMessage(row, `status-${state}`, [{ kind: "text", text: statusText(row) }], row.id),
      timestamp: (row.completedAt ?? row.createdAt).toISOString(),
    },
    ...(row.status === "success"
      ? {
          artifacts: [
            { artifactId: "output", name: "output", parts: [outputPart(outputOf(row.responseBody))] },
          ],
        }
      : {}),
    metadata: stewardMetadata(row, approval?.approval_id ? { approval_id: approval.approval_id } : {}),
  };
}

/** What each Steward error is called over JSON-RPC: its code and the `data.reason`. */
const RPC_BY_CODE: Partial<Record<ErrorCode, { code: number; reason: string }>> = {
  RATE_LIMIT_EXCEEDED: { code: RPC_ERRORS.RATE_LIMITED, reason: "rate_limited" },
  BUDGET_EXCEEDED: { code: RPC_ERRORS.BUDGET_EXCEEDED, reason: "budget_exceeded" },
  POLICY_DENIED: { code: RPC_ERRORS.POLICY_DENIED, reason: "policy_denied" },
  NOT_FOUND: { code: RPC_ERRORS.NOT_FOUND, reason: "not_found" },
  CONFLICT: { code: RPC_ERRORS.CONFLICT, reason: "conflict" },
};

/**
 * A Steward error as a JSON-RPC error, with the HTTP status the REST API gives it (so a
 * rate limit is a 429 with Retry-After here too). Agent failures are -32603.
 */
export function refusalFor(error: AppError, headers: Record<string, string> = {}): A2aRefusal {
  const mapped = RPC_BY_CODE[error.code] ?? {
    code: RPC_ERRORS.INTERNAL_ERROR,
    reason: error.code.toLowerCase(),
  };
  const data: Record<string, unknown> = { ...error.details, reason: mapped.reason };
  if (headers["retry-after"]) data.retry_after_seconds = Number(headers["retry-after"]);
  return {
    httpStatus: STATUS_BY_CODE[error.code],
    headers,
    error: { code: mapped.code, message: error.message, data },
  };
}

/**
 * The answer to `message/send`: the agent's reply as a Message, a call waiting for
 * approval as a Task in `input-required`, anything else as a refusal.
 */
export function answerForA2a(row: InvocationRow): A2aAnswer {
  const answer = answerFor(row);
  if ("error" in answer) return refusalFor(answer.error, answer.headers);
  if (answer.statusCode === 202) return { result: taskFor(row), headers: answer.headers };
  return {
    result: agentMessage(row, "reply", [outputPart(answer.body.output)]),
    headers: answer.headers,
  };
}

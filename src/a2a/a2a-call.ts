import { type A2aTask, readReply, statusText, storedMessage, storedTask, taskOutput } from "./a2a-reply.js";

/**
 * Invoking an A2A agent (protocol v0.3, JSON-RPC over HTTP): `message/send`, then
 * `tasks/get` until the task ends or the deadline passes (then `tasks/cancel`).
 *
 * The JSON-RPC is written by hand rather than with the SDK's LegacyJsonRpcTransport:
 * every request must go through AgentClient's exchange (SSRF guard, credentials, an hmac
 * over the exact bytes, retries, the size cap, redaction of echoed credentials), and the
 * answers are kept as v0.3 JSON, which the SDK client would turn into its v1.0 types.
 */

/** One JSON-RPC request's fate, as AgentClient reports it (retries included). */
export interface RpcResult {
  outcome: "success" | "failure" | "timeout";
  status?: number;
  body?: unknown;
  error?: string;
  retryable?: boolean;
  attempts: number;
}

export interface A2aTransport {
  /** POSTs one JSON-RPC request, retrying transient failures, within the call's deadline. */
  post(body: unknown, requestId: string): Promise<RpcResult>;
  /** One attempt with a short deadline of its own: for the cancel after the call's deadline. */
  postLate(body: unknown, requestId: string): Promise<RpcResult>;
  sleep(ms: number): Promise<void>;
  remainingMs(): number;
}

/** What Steward's webhook body carries (built by the invocation service): the same facts go over A2A. */
export interface InvocationPayload {
  input: string;
  context: Record<string, unknown>;
  metadata: Record<string, unknown>;
  invocation_id: string;
  trace_id: string;
  external_user: Record<string, unknown>;
}

/** tasks/get polling: the first wait, doubled after each poll up to the longest. */
const FIRST_POLL_MS = 250;
const LONGEST_POLL_MS = 2_000;

type Judged = { done: Omit<RpcResult, "attempts"> } | { follow: A2aTask };

/**
 * Sends the invocation as an A2A message and follows the reply to its end. `messageId`
 * is the same on every attempt (it is the invocation id), so an agent can drop a
 * message/send it already received; `attempts` counts the message/send attempts.
 */
export async function callA2a(
  payload: InvocationPayload,
  traceparent: string | undefined,
  messageId: string,
  transport: A2aTransport,
): Promise<RpcResult> {
  const sent = await transport.post(messageSend(payload, traceparent, messageId), messageId);
  let judged = judge(sent, "message/send");
  for (let poll = 1; "follow" in judged; poll += 1) {
    const task = judged.follow;
    await transport.sleep(
      Math.min(FIRST_POLL_MS * 2 ** (poll - 1), LONGEST_POLL_MS, transport.remainingMs()),
    );
    const requestId = `${messageId}:tasks/get:${poll}`;
    const got = await transport.post(
      rpc(requestId, "tasks/get", { id: task.id, historyLength: 0 }),
      requestId,
    );
    if (got.outcome === "timeout") {
      // Best effort, not awaited: the agent may stop work nobody will read.
      const cancelId = `${messageId}:tasks/cancel`;
      void transport.postLate(rpc(cancelId, "tasks/cancel", { id: task.id }), cancelId);
      const error = `the A2A task did not end before the deadline (last state ${task.status.state})`;
      return { outcome: "timeout", status: got.status, error, retryable: true, attempts: sent.attempts };
    }
    judged = judge(got, "tasks/get");
  }
  return { ...judged.done, attempts: sent.attempts };
}

const ACCEPTED_OUTPUT_MODES = ["text/plain", "application/json"];

function messageSend(payload: InvocationPayload, traceparent: string | undefined, messageId: string) {
  const parts: unknown[] = [{ kind: "text", text: payload.input }];
  if (Object.keys(payload.context).length > 0) parts.push({ kind: "data", data: payload.context });
  const steward = {
    invocation_id: payload.invocation_id,
    trace_id: payload.trace_id,
    traceparent,
    external_user: payload.external_user,
  };
  return rpc(messageId, "message/send", {
    // The caller's metadata travels as it does in a webhook body; Steward's own key wins a clash.
    message: { kind: "message", messageId, role: "user", parts, metadata: { ...payload.metadata, steward } },
    // What Steward reads back: text parts and data parts. Optional in A2A 0.3, but servers
    // built on 0.2's types (pydantic's FastA2A) refuse a configuration without it.
    configuration: { blocking: true, acceptedOutputModes: ACCEPTED_OUTPUT_MODES },
  });
}

function rpc(id: string, method: string, params: unknown) {
  return { jsonrpc: "2.0", id, method, params };
}

/** What one answer means: the call's end, or a task still running to follow. */
function judge(result: RpcResult, method: string): Judged {
  const { outcome, status, body } = result;
  if (outcome === "timeout") return { done: { outcome, status, error: result.error, retryable: true } };
  const reply = readReply(body);
  if (outcome === "failure") {
    // The agent's JSON-RPC error says more than the HTTP status it came with.
    const error = reply.kind === "error" ? `${rpcError(reply)} (HTTP ${status})` : result.error;
    return { done: { outcome, status, body, error: `${method}: ${error}`, retryable: result.retryable } };
  }
  const failure = (error: string) => ({
    done: { outcome: "failure" as const, status, body, error, retryable: false },
  });
  switch (reply.kind) {
    case "invalid":
      return failure(`${method}: the agent's answer is not an A2A v0.3 JSON-RPC result`);
    case "error":
      // The agent received and judged the request: sending it again would get the same answer.
      return failure(`${method}: ${rpcError(reply)}`);
    case "message":
      return { done: { outcome: "success", status, body: storedMessage(reply.message) } };
    case "task":
      return judgeTask(reply.task, status);
  }
}

function judgeTask(task: A2aTask, status: number | undefined): Judged {
  const { state } = task.status;
  const failure = (error: string): Judged => ({
    done: { outcome: "failure", status, body: storedTask(task, null), error, retryable: false },
  });
  switch (state) {
    case "completed":
      return { done: { outcome: "success", status, body: storedTask(task, taskOutput(task)) } };
    case "submitted":
    case "working":
      return { follow: task };
    case "failed":
    case "rejected":
    case "canceled":
      return failure(`A2A task ${state}: ${statusText(task)}`);
    case "input-required":
    case "auth-required":
      return failure(
        `A2A task ${state}: the agent asked a question Steward cannot answer (${statusText(task)})`,
      );
    default:
      return failure(`A2A task in unexpected state ${state}`);
  }
}

function rpcError(reply: { code: number; message: string }): string {
  return `A2A error ${reply.code}: ${reply.message}`;
}

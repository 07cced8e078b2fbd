/**
 * Reading A2A v0.3 JSON-RPC answers: what kind of reply came (a Message, a Task, an
 * error) and the output an invocation keeps from it.
 */

export interface A2aPart {
  kind: string;
  text?: string;
  data?: unknown;
  file?: unknown;
}

export interface A2aMessage {
  kind: "message";
  contextId?: string;
  taskId?: string;
  parts: A2aPart[];
}

export interface A2aTask {
  kind: "task";
  id: string;
  contextId?: string;
  status: { state: string; message?: A2aMessage };
  artifacts?: Array<{ parts: A2aPart[] }>;
}

export type A2aReply =
  | { kind: "message"; message: A2aMessage }
  | { kind: "task"; task: A2aTask }
  | { kind: "error"; code: number; message: string }
  | { kind: "invalid" };

/** The stored answer: `result` is the invocation's output (see outputOf in invocation-response.ts). */
export interface A2aStoredBody {
  result: unknown;
  a2a: { kind: "message" | "task"; task_id: string | null; context_id: string | null; state: string | null };
}

/** Agent-written text quoted in an error message is cut to this length. */
const MAX_QUOTED_CHARS = 500;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isParts(value: unknown): value is A2aPart[] {
  return Array.isArray(value) && value.every((part) => isObject(part) && typeof part.kind === "string");
}

function isMessage(value: unknown): value is A2aMessage {
  return isObject(value) && value.kind === "message" && isParts(value.parts);
}

function isTask(value: unknown): value is A2aTask {
  if (!isObject(value) || value.kind !== "task" || typeof value.id !== "string") return false;
  const { status, artifacts } = value;
  return (
    isObject(status) &&
    typeof status.state === "string" &&
    (status.message === undefined || isMessage(status.message)) &&
    (artifacts === undefined ||
      (Array.isArray(artifacts) &&
        artifacts.every((artifact) => isObject(artifact) && isParts(artifact.parts))))
  );
}

/** What a JSON-RPC answer body holds; anything that is not v0.3 A2A is `invalid`. */
export function readReply(body: unknown): A2aReply {
  if (!isObject(body)) return { kind: "invalid" };
  const { error, result } = body;
  if (isObject(error) && typeof error.code === "number") {
    return { kind: "error", code: error.code, message: quoted(error.message) };
  }
  if (isMessage(result)) return { kind: "message", message: result };
  if (isTask(result)) return { kind: "task", task: result };
  return { kind: "invalid" };
}

/**
 * The output of a list of parts: the texts joined by "\n" when every part is text (the
 * common case, and what a webhook agent's string result looks like), otherwise
 * `{parts: [...]}` with each text part as its string, each data part as its object and
 * any other part (a file) as it came.
 */
export function outputOfParts(parts: readonly A2aPart[]): unknown {
  if (parts.every((part) => part.kind === "text")) return parts.map((part) => part.text ?? "").join("\n");
  return {
    parts: parts.map((part) => (part.kind === "text" ? part.text : part.kind === "data" ? part.data : part)),
  };
}

/** A completed task's output: its artifacts' parts, or else its status message's, or else null. */
export function taskOutput(task: A2aTask): unknown {
  const parts = (task.artifacts ?? []).flatMap((artifact) => artifact.parts);
  if (parts.length > 0) return outputOfParts(parts);
  return task.status.message ? outputOfParts(task.status.message.parts) : null;
}

/** The text of a task's status message, for an error; the agent's words, shortened. */
export function statusText(task: A2aTask): string {
  const texts = (task.status.message?.parts ?? []).flatMap((part) =>
    part.kind === "text" ? [part.text] : [],
  );
  return texts.length > 0 ? quoted(texts.join(" ")) : "no reason given";
}

export function storedMessage(message: A2aMessage): A2aStoredBody {
  return {
    result: outputOfParts(message.parts),
    a2a: {
      kind: "message",
      task_id: message.taskId ?? null,
      context_id: message.contextId ?? null,
      state: null,
    },
  };
}

export function storedTask(task: A2aTask, result: unknown): A2aStoredBody {
  return {
    result,
    a2a: { kind: "task", task_id: task.id, context_id: task.contextId ?? null, state: task.status.state },
  };
}

function quoted(value: unknown): string {
  const text = typeof value === "string" && value !== "" ? value : "no message";
  return text.length > MAX_QUOTED_CHARS ? `${text.slice(0, MAX_QUOTED_CHARS)}…` : text;
}

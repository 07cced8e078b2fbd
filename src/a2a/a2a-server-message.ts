import type { CallerIdentity } from "../invocation/caller-identity.js";
import type { InvokeBody } from "../invocation/invocation.service.js";
import { invalidParams, RPC_ERRORS, type RpcError } from "./a2a-server-rpc.js";

/**
 * An A2A `message/send` (or `message/stream`) request as a governed call: the text parts
 * are the input, the data parts the context, the message id the idempotency key.
 */

export interface A2aCallInput {
  body: InvokeBody;
  /** `a2a:<messageId>`: a client resending the same message gets the first call's answer. */
  idempotencyKey: string;
  /** The caller identity fields the message's metadata gives (see CALLER_FIELDS). */
  identity: CallerIdentity;
  /** The conversation the caller named, if any; otherwise the invocation id stands for it. */
  contextId?: string;
}

/** The system lineage records for every call that came in over A2A. */
export const A2A_SYSTEM = "a2a";

const MAX_ID_LENGTH = 200;
const MAX_IDENTITY_VALUE = 512;

/** Metadata keys that map onto Steward's caller identity (the X-External-* headers). */
const CALLER_FIELDS = {
  user_id: "userId",
  user_email: "userEmail",
  user_name: "userName",
  user_role: "userRole",
  session_id: "sessionId",
  trace_id: "traceId",
} as const satisfies Record<string, keyof CallerIdentity>;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function shortId(value: unknown, field: string): string | RpcError {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_ID_LENGTH)
    return invalidParams(field, `must be a string of 1 to ${MAX_ID_LENGTH} characters`);
  return value;
}

/** The governed call a message asks for, or the JSON-RPC error naming what is wrong with it. */
export function readA2aMessage(params: Record<string, unknown>): A2aCallInput | RpcError {
  const message = params.message;
  if (!isObject(message)) return invalidParams("params.message", "must be an object");
  if (message.role !== "user") return invalidParams("params.message.role", 'must be "user"');
  const messageId = shortId(message.messageId, "params.message.messageId");
  if (typeof messageId !== "string") return messageId;
  let contextId: string | undefined;
  // Clients send "" for "none" as often as they leave it out.
  if (message.contextId !== undefined && message.contextId !== null && message.contextId !== "") {
    const given = shortId(message.contextId, "params.message.contextId");
    if (typeof given !== "string") return given;
    contextId = given;
  }
  if (!Array.isArray(message.parts) || message.parts.length === 0)
    return invalidParams("params.message.parts", "must be a non-empty array");

  const texts: string[] = [];
  const context: Record<string, unknown> = {};
  for (const [index, part] of message.parts.entries()) {
    const field = `params.message.parts[${index}]`;
    if (!isObject(part)) return invalidParams(field, "must be an object");
    if (part.kind === "text") {
      if (typeof part.text !== "string") return invalidParams(`${field}.text`, "must be a string");
      texts.push(part.text);
    } else if (part.kind === "data") {
      if (!isObject(part.data)) return invalidParams(`${field}.data`, "must be an object");
      Object.assign(context, part.data);
    } else if (part.kind === "file") {
      return {
        code: RPC_ERRORS.CONTENT_TYPE_NOT_SUPPORTED,
        message: "Content type not supported: Steward passes text and data parts, not files",
        data: { field },
      };
    } else {
      return invalidParams(`${field}.kind`, 'must be "text", "data" or "file"');
    }
  }
  const input = texts.join("\n");
  if (input.trim() === "") return invalidParams("params.message.parts", "must hold a non-empty text part");

  const identity = readCallerMetadata(message.metadata);
  if ("code" in identity) return identity;
  const body: InvokeBody = {
    input,
    ...(Object.keys(context).length > 0 ? { context } : {}),
    metadata: { a2a: { message_id: messageId, ...(contextId ? { context_id: contextId } : {}) } },
  };
  return { body, idempotencyKey: `a2a:${messageId}`, identity, contextId };
}

/** The caller identity in `message.metadata` (snake_case keys of CALLER_FIELDS, string values). */
function readCallerMetadata(metadata: unknown): CallerIdentity | RpcError {
  if (metadata === undefined || metadata === null) return {};
  if (!isObject(metadata)) return invalidParams("params.message.metadata", "must be an object");
  const identity: CallerIdentity = {};
  for (const [key, field] of Object.entries(CALLER_FIELDS)) {
    const value = metadata[key];
    if (value === undefined) continue;
    if (typeof value !== "string" || value.length > MAX_IDENTITY_VALUE)
      return invalidParams(
        `params.message.metadata.${key}`,
        `must be a string of at most ${MAX_IDENTITY_VALUE} characters`,
      );
    if (value.trim() !== "") identity[field] = value.trim();
  }
  return identity;
}

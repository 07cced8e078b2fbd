/**
 * The JSON-RPC 2.0 envelope of Steward's published A2A endpoint: reading a request,
 * and the error codes it answers with — the spec's, and Steward's own in the
 * -32000…-32099 range the spec leaves to servers (documented in docs/a2a.md).
 */

export const RPC_ERRORS = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  TASK_NOT_FOUND: -32001,
  TASK_NOT_CANCELABLE: -32002,
  CONTENT_TYPE_NOT_SUPPORTED: -32005,
  // Steward's own; clear of -32001…-32009, which A2A uses.
  RATE_LIMITED: -32029,
  BUDGET_EXCEEDED: -32042,
  POLICY_DENIED: -32043,
  NOT_FOUND: -32044,
  CONFLICT: -32045,
} as const;

export type RpcId = string | number | null;

export interface RpcError {
  code: number;
  message: string;
  data?: Record<string, unknown>;
}

export type RpcResponse =
  | { jsonrpc: "2.0"; id: RpcId; result: unknown }
  | { jsonrpc: "2.0"; id: RpcId; error: RpcError };

export interface RpcRequest {
  id: RpcId;
  method: string;
  params: Record<string, unknown>;
}

/** A body that is not JSON at all; the route answers it with -32700. */
export class UnparsableBody {}

export function rpcResult(id: RpcId, result: unknown): RpcResponse {
  return { jsonrpc: "2.0", id, result };
}

export function rpcError(id: RpcId, error: RpcError): RpcResponse {
  return { jsonrpc: "2.0", id, error };
}

/** A -32602 naming the field at fault, so a client can tell what to fix. */
export function invalidParams(field: string, message: string): RpcError {
  return { code: RPC_ERRORS.INVALID_PARAMS, message: `Invalid params: ${field} ${message}`, data: { field } };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function validId(value: unknown): value is RpcId {
  return typeof value === "string" || (typeof value === "number" && Number.isFinite(value)) || value === null;
}

/**
 * The request in `body`, or the error answering it with the id echoed when there is a
 * usable one. Batches and notifications are not A2A's and are refused as invalid.
 */
export function readRpcRequest(body: unknown): RpcRequest | { id: RpcId; error: RpcError } {
  if (body instanceof UnparsableBody)
    return {
      id: null,
      error: { code: RPC_ERRORS.PARSE_ERROR, message: "Parse error: the body is not JSON" },
    };
  const invalid = (id: RpcId, message: string) => ({
    id,
    error: { code: RPC_ERRORS.INVALID_REQUEST, message: `Invalid Request: ${message}` },
  });
  if (!isObject(body)) return invalid(null, "the body must be one JSON-RPC request object");
  const id = validId(body.id) ? body.id : null;
  if (body.jsonrpc !== "2.0") return invalid(id, 'jsonrpc must be "2.0"');
  if (!("id" in body) || !validId(body.id)) return invalid(null, "id must be a string, a number or null");
  if (typeof body.method !== "string" || body.method === "") return invalid(id, "method must be a string");
  if (body.params !== undefined && !isObject(body.params))
    return { id, error: invalidParams("params", "must be an object") };
  return { id, method: body.method, params: (body.params as Record<string, unknown> | undefined) ?? {} };
}

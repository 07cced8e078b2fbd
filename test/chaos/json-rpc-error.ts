/**
 * The code of a JSON-RPC 2.0 error answer — what Steward's A2A endpoint (/a2a/…) gives
 * instead of the API's error envelope (docs/a2a.md) — or undefined for any other body.
 */
export function jsonRpcErrorCode(body: unknown): number | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const { jsonrpc, error } = body as { jsonrpc?: unknown; error?: { code?: unknown; message?: unknown } };
  if (jsonrpc !== "2.0" || typeof error?.message !== "string" || !Number.isInteger(error.code))
    return undefined;
  return error.code as number;
}

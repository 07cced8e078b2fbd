import type { IncomingHttpHeaders } from "node:http";
import type { FieldError } from "../errors.js";

/** Who asked, as the calling system tells it: lineage layers (1) and (2). */
export interface CallerIdentity {
  userId?: string;
  userEmail?: string;
  userName?: string;
  userRole?: string;
  system?: string;
  sessionId?: string;
  traceId?: string;
  context?: Record<string, unknown>;
}

const MAX_HEADER_VALUE = 512;
const MAX_CONTEXT_BYTES = 16 * 1024;

const HEADERS = {
  userId: "x-external-user-id",
  userEmail: "x-external-user-email",
  userName: "x-external-user-name",
  userRole: "x-external-user-role",
  system: "x-external-system",
  sessionId: "x-external-session-id",
  traceId: "x-external-trace-id",
} as const;

/** Reads the X-External-* headers; a malformed one is a field error, never silently dropped. */
export function readCallerIdentity(headers: IncomingHttpHeaders): {
  identity: CallerIdentity;
  errors: FieldError[];
} {
  const identity: CallerIdentity = {};
  const errors: FieldError[] = [];
  for (const [field, name] of Object.entries(HEADERS) as Array<[keyof typeof HEADERS, string]>) {
    const value = headers[name];
    if (value === undefined) continue;
    const text = Array.isArray(value) ? value.join(",") : value;
    if (text.length > MAX_HEADER_VALUE)
      errors.push({ field: name, message: `must be at most ${MAX_HEADER_VALUE} characters` });
    else if (text.trim() !== "") identity[field] = text.trim();
  }
  const context = headers["x-external-context"];
  if (typeof context === "string" && context.trim() !== "") {
    if (context.length > MAX_CONTEXT_BYTES) {
      errors.push({ field: "x-external-context", message: `must be at most ${MAX_CONTEXT_BYTES} bytes` });
    } else {
      try {
        const parsed: unknown = JSON.parse(context);
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new TypeError();
        identity.context = parsed as Record<string, unknown>;
      } catch {
        errors.push({ field: "x-external-context", message: "must be a JSON object" });
      }
    }
  }
  return { identity, errors };
}

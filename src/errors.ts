/**
 * Typed domain errors. Domain code throws these with a code from the closed set below;
 * only the HTTP layer (src/http/error-handler.ts) knows which status each code maps to.
 */

export const ERROR_CODES = [
  "BAD_REQUEST",
  "VALIDATION_ERROR",
  "UNAUTHORIZED",
  "FORBIDDEN",
  "NOT_FOUND",
  "CONFLICT",
  "GONE",
  "AGENT_NOT_ACTIVE",
  "POLICY_DENIED",
  "RATE_LIMIT_EXCEEDED",
  "BUDGET_EXCEEDED",
  "UPSTREAM_ERROR",
  "UPSTREAM_TIMEOUT",
  "PAYLOAD_TOO_LARGE",
  "UNSUPPORTED_MEDIA_TYPE",
  "SERVICE_UNAVAILABLE",
  "INTERNAL_ERROR",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface FieldError {
  field: string;
  message: string;
}

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "AppError";
  }
}

export class ValidationError extends AppError {
  constructor(
    readonly errors: FieldError[],
    message = "Request validation failed",
  ) {
    super("VALIDATION_ERROR", message, { errors });
    this.name = "ValidationError";
  }
}

export class NotFoundError extends AppError {
  constructor(resource: string, id: string) {
    super("NOT_FOUND", `${resource} ${id} not found`);
    this.name = "NotFoundError";
  }
}

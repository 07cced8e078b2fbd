import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { isDatabaseUnavailable, isDataException } from "../db/errors.js";
import { AppError, type ErrorCode } from "../errors.js";
import { type SchemaError, toFieldErrors } from "./field-errors.js";

/** The one table from error code to HTTP status. */
export const STATUS_BY_CODE: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  VALIDATION_ERROR: 400,
  AGENT_NOT_ACTIVE: 400,
  UNAUTHORIZED: 401,
  BUDGET_EXCEEDED: 402,
  FORBIDDEN: 403,
  POLICY_DENIED: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  GONE: 410,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMIT_EXCEEDED: 429,
  INTERNAL_ERROR: 500,
  UPSTREAM_ERROR: 502,
  SERVICE_UNAVAILABLE: 503,
  UPSTREAM_TIMEOUT: 504,
};

/** What a client is told to wait while the database is away: about a restart's length. */
const DATABASE_RETRY_AFTER_SECONDS = 5;

/** Fastify's own client errors (bad JSON, body too large, …) by status. */
const CODE_BY_FRAMEWORK_STATUS: Record<number, ErrorCode> = {
  400: "BAD_REQUEST",
  404: "NOT_FOUND",
  413: "PAYLOAD_TOO_LARGE",
  415: "UNSUPPORTED_MEDIA_TYPE",
};

export interface ErrorBody {
  error: { code: ErrorCode; message: string; request_id: string; details?: Record<string, unknown> };
}

export function sendError(
  reply: FastifyReply,
  code: ErrorCode,
  message: string,
  details?: Record<string, unknown>,
): FastifyReply {
  const body: ErrorBody = { error: { code, message, request_id: String(reply.request.id) } };
  if (details) body.error.details = details;
  return reply.status(STATUS_BY_CODE[code]).send(body);
}

export function registerErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof AppError) {
      // A fault Steward itself must fix: the operator needs it in the logs, not only the client.
      if (error.code === "INTERNAL_ERROR") request.log.error({ err: error }, error.message);
      return sendError(reply, error.code, error.message, error.details);
    }
    if (error.validation) {
      const errors = toFieldErrors(error.validation as SchemaError[]);
      return sendError(reply, "VALIDATION_ERROR", "Request validation failed", { errors });
    }
    if (isDatabaseUnavailable(error)) {
      request.log.warn({ err: error }, "database unavailable");
      reply.header("retry-after", String(DATABASE_RETRY_AFTER_SECONDS));
      return sendError(reply, "SERVICE_UNAVAILABLE", "The database is unavailable; try again shortly");
    }
    if (isDataException(error)) {
      request.log.warn({ err: error }, "the database refused a value of the request");
      return sendError(reply, "BAD_REQUEST", "A value in the request cannot be stored");
    }
    const status = error.statusCode ?? 500;
    const frameworkCode = CODE_BY_FRAMEWORK_STATUS[status];
    if (status < 500 && frameworkCode) {
      return sendError(reply, frameworkCode, error.message);
    }
    request.log.error({ err: error }, "unhandled error");
    return sendError(reply, "INTERNAL_ERROR", "Internal error");
  });

  app.setNotFoundHandler((request, reply) =>
    sendError(reply, "NOT_FOUND", `Route ${request.method} ${request.url.split("?")[0]} not found`),
  );
}

/**
 * Errors Fastify's router raises before a route is found — a path that is not valid
 * percent-encoding, a path parameter past its length limit — in the error envelope.
 */
export function sendFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  reply.header("x-request-id", request.id);
  const message =
    error.code === "FST_ERR_MAX_PARAM_LENGTH"
      ? `A path parameter is longer than ${MAX_PATH_PARAMETER_LENGTH} characters`
      : "The URL is not valid: a part of its path is not correctly percent-encoded";
  void sendError(reply, "BAD_REQUEST", message);
}

/** Fastify's default for a path parameter's length; ids are far shorter. */
export const MAX_PATH_PARAMETER_LENGTH = 100;

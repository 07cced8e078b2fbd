import pino, { type DestinationStream, type Logger } from "pino";

/**
 * Paths pino blanks out wherever they appear, as a last line of defence: code should
 * never hand secrets to the logger in the first place.
 */
const REDACTED_PATHS = [
  "req.headers.authorization",
  'req.headers["x-api-key"]',
  "headers.authorization",
  'headers["x-api-key"]',
  "*.password",
  "*.token",
  "*.secret",
  "*.client_secret",
  "*.bot_token",
  "*.key",
  "*.auth_config",
  "*.platform_config",
];

/** A browser's WebSocket carries its credential in the query string: never log it. */
function withoutQueryCredential(url: unknown): unknown {
  return typeof url === "string" ? url.replace(/([?&]access_token=)[^&#]*/gi, "$1[redacted]") : url;
}

/**
 * A failed query's error (Drizzle's) carries the values it bound — a job's input, a
 * header from a graph's http node — in `params` and at the end of its message, which
 * the message of any error it caused repeats. They are logged without them.
 */
function errorWithoutQueryValues(error: unknown): unknown {
  // What is not an error (a string, null) is logged as it is.
  if (typeof error !== "object" || error === null) return error;
  const { params: _, ...serialized } = pino.stdSerializers.err(error as Error) as Record<string, unknown>;
  for (const field of ["message", "stack"]) {
    const text = serialized[field];
    if (typeof text === "string") serialized[field] = withoutQueryValues(text);
  }
  return serialized;
}

/** An error's text without the values a failed query bound (see errorWithoutQueryValues). */
export function withoutQueryValues(text: string): string {
  return text.replace(/\nparams: [\s\S]*?(?=\n {4}at |\ncaused by: |$)/g, "\nparams: [not logged]");
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "steward" },
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
      serializers: {
        req: (req: {
          method?: string;
          url?: string;
          host?: string;
          remoteAddress?: string;
          ip?: string;
        }) => ({
          method: req.method,
          url: withoutQueryCredential(req.url),
          host: req.host,
          remoteAddress: req.remoteAddress ?? req.ip,
        }),
        err: errorWithoutQueryValues,
      },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

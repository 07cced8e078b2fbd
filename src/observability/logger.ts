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
      },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

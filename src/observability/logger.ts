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

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "steward" },
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

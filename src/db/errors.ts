/** PostgreSQL SQLSTATEs Steward tells apart. */
const UNIQUE_VIOLATION = "23505";
const FOREIGN_KEY_VIOLATION = "23503";

/** The PostgreSQL error inside `error` (Drizzle wraps it as the cause), if any. */
function postgresError(error: unknown): { code: string; constraint?: string } | undefined {
  for (let current = error; current instanceof Error; current = current.cause) {
    const candidate = current as Error & { code?: unknown; constraint?: string };
    if (typeof candidate.code === "string") return { code: candidate.code, constraint: candidate.constraint };
  }
  return undefined;
}

/** True when `error` (or the error it wraps, as Drizzle does) is a unique-constraint violation. */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const found = postgresError(error);
  return found?.code === UNIQUE_VIOLATION && (constraint === undefined || found.constraint === constraint);
}

/** True when `error` (or the error it wraps) is a foreign-key violation: a row names one that does not exist. */
export function isForeignKeyViolation(error: unknown): boolean {
  return postgresError(error)?.code === FOREIGN_KEY_VIOLATION;
}

/**
 * True when a statement lost a race with another creating the same thing at the same
 * moment: a unique violation (in the catalogue, too, when both run CREATE … IF NOT
 * EXISTS), or a duplicate object.
 */
export function isConcurrentCreation(error: unknown): boolean {
  const code = postgresError(error)?.code;
  return code === UNIQUE_VIOLATION || code === "42710" || code === "42P07";
}

/**
 * True when a transaction was rolled back for colliding with another (a deadlock, or a
 * serialization failure): run again, it normally succeeds.
 */
export function isTransactionConflict(error: unknown): boolean {
  const code = postgresError(error)?.code;
  return code === "40P01" || code === "40001";
}

/** True when the database refused a value itself (SQLSTATE class 22: a NUL byte, a malformed date…). */
export function isDataException(error: unknown): boolean {
  return postgresError(error)?.code.startsWith("22") ?? false;
}

/**
 * True when the database refused what a statement held (SQLSTATE class 22, data
 * exception, or 23, integrity constraint) rather than failing as a whole: written
 * again without the offending row, the rest would succeed.
 */
export function isRowRefusal(error: unknown): boolean {
  const code = postgresError(error)?.code;
  return code !== undefined && (code.startsWith("22") || code.startsWith("23"));
}

/** Connection failures: SQLSTATE class 08, and the server shutting down or starting up. */
const UNAVAILABLE_STATES = new Set(["57P01", "57P02", "57P03", "53300"]);
const UNAVAILABLE_SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
]);
/** node-postgres reports these without a code. */
const UNAVAILABLE_MESSAGES = [
  "Connection terminated",
  "timeout exceeded when trying to connect",
  "Client has encountered a connection error",
];

/**
 * True when `error` (or an error it wraps) means the database could not be reached or
 * dropped the connection — not that it refused the statement. Such a request may
 * succeed once the database is back.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current = error; current instanceof Error; current = current.cause) {
    const code = (current as Error & { code?: unknown }).code;
    if (typeof code === "string" && (code.startsWith("08") || UNAVAILABLE_STATES.has(code))) return true;
    if (typeof code === "string" && UNAVAILABLE_SOCKET_CODES.has(code)) return true;
    if (UNAVAILABLE_MESSAGES.some((message) => current.message.includes(message))) return true;
  }
  return false;
}

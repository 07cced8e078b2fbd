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
 * True when a transaction was rolled back for colliding with another (a deadlock, or a
 * serialization failure): run again, it normally succeeds.
 */
export function isTransactionConflict(error: unknown): boolean {
  const code = postgresError(error)?.code;
  return code === "40P01" || code === "40001";
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

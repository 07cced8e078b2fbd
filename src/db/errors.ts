/** PostgreSQL SQLSTATE for unique_violation. */
const UNIQUE_VIOLATION = "23505";

/** True when `error` (or the error it wraps, as Drizzle does) is a unique-constraint violation. */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  for (let current = error; current instanceof Error; current = current.cause) {
    const pgError = current as Error & { code?: string; constraint?: string };
    if (pgError.code === UNIQUE_VIOLATION)
      return constraint === undefined || pgError.constraint === constraint;
  }
  return false;
}

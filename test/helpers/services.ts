/** The real PostgreSQL the integration tests use; they fail (never skip) when it is missing. */
export const TEST_DATABASE_URL =
  process.env.STEWARD_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

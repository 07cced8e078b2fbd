/** The real PostgreSQL the integration tests use; they fail (never skip) when it is missing. */
export const TEST_DATABASE_URL =
  process.env.STEWARD_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** The real Redis the integration tests use. */
export const TEST_REDIS_URL = process.env.STEWARD_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** The real NATS (with JetStream) the integration tests use. */
export const TEST_NATS_URL = process.env.STEWARD_TEST_NATS_URL ?? "nats://127.0.0.1:4222";

import { randomBytes } from "node:crypto";
import { inject } from "vitest";

/** A schema name of this test run that no other test uses (global teardown drops it). */
export function uniqueSchema(): string {
  return `steward_test_${inject("testRunId")}_${randomBytes(4).toString("hex")}`;
}

/** A Redis key prefix of this test run that no other test uses (global teardown deletes its keys). */
export function uniqueRedisPrefix(): string {
  return `steward_test_${inject("testRunId")}_${randomBytes(4).toString("hex")}:`;
}

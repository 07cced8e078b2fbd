import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import pg from "pg";
import { TEST_DATABASE_URL, TEST_REDIS_URL } from "./helpers/services.js";

/**
 * One id per test run: every schema a test creates starts with
 * `steward_test_<run>_`, so runs never collide and teardown removes exactly this run's.
 */
export default async function setup({ provide }: { provide: (key: "testRunId", value: string) => void }) {
  const runId = randomBytes(4).toString("hex");
  provide("testRunId", runId);
  return async () => {
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    try {
      const { rows } = await client.query<{ nspname: string }>(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1",
        [`steward_test_${runId}_%`],
      );
      for (const { nspname } of rows) await client.query(`DROP SCHEMA "${nspname}" CASCADE`);
    } finally {
      await client.end();
    }
    await deleteRedisKeys(`steward_test_${runId}_*`);
  };
}

declare module "vitest" {
  export interface ProvidedContext {
    testRunId: string;
  }
}

async function deleteRedisKeys(pattern: string): Promise<void> {
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true });
  await redis.connect();
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

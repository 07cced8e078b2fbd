import { defineConfig } from "vitest/config";

/**
 * The chaos suite (`npm run test:chaos`): breaks real services and Steward processes on
 * purpose — the servers a test stops or freezes are private to it; the rest share the
 * machine's PostgreSQL, Redis and NATS under names of their own — and ends with the
 * summary table. Hooks get twice a process start's 60 s, so a slow start fails the
 * start, not the hook, and its cleanup still runs.
 */
export default defineConfig({
  test: {
    include: ["test/chaos/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    reporters: ["default", "./test/chaos/summary-reporter.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    maxWorkers: 2,
  },
});

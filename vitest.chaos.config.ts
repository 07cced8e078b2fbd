import { defineConfig } from "vitest/config";

/**
 * The chaos suite (`npm run test:chaos`): breaks real services and Steward processes on
 * purpose, each test on its own private servers, and ends with the summary table.
 */
export default defineConfig({
  test: {
    include: ["test/chaos/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    reporters: ["default", "./test/chaos/summary-reporter.ts"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 2,
  },
});

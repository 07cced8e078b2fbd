import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Vitest would use one worker on a 2-core machine; the tests mostly wait on services
    // and child processes, and each has its own schema, key prefix and stream names.
    maxWorkers: 2,
  },
});

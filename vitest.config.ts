import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The chaos suite runs on its own: npm run test:chaos (vitest.chaos.config.ts).
    exclude: [...configDefaults.exclude, "test/chaos/**"],
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Vitest would use one worker on a 2-core machine; the tests mostly wait on services
    // and child processes, and each has its own schema, key prefix and stream names.
    maxWorkers: 2,
  },
});

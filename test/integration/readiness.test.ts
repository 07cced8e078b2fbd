import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../helpers/eventually.js";
import { type RestartableNatsServer, startRestartableNatsServer } from "../helpers/nats-server.js";
import { uniqueRedisPrefix } from "../helpers/schema.js";
import { TEST_REDIS_URL } from "../helpers/services.js";
import { startTestSteward, type TestSteward } from "../helpers/steward.js";

/**
 * Readiness checks PostgreSQL, Redis and NATS each and says which one does not answer. An
 * API process stays ready, degraded, without NATS; a worker, which consumes nothing
 * without it, does not.
 */
describe("/ready with every dependency configured", () => {
  let nats: RestartableNatsServer;
  let api: TestSteward;
  let worker: TestSteward;

  beforeAll(async () => {
    // A NATS server of this test's own: stopping the shared one would break every other test.
    nats = await startRestartableNatsServer();
    const env = {
      NATS_URL: nats.url,
      REDIS_URL: TEST_REDIS_URL,
      STEWARD_REDIS_PREFIX: uniqueRedisPrefix(),
      STEWARD_JOBS_STREAM: `READY_${randomBytes(4).toString("hex").toUpperCase()}`,
    };
    api = await startTestSteward("postgres", env);
    worker = await startTestSteward("postgres", env, "operations");
  });
  afterAll(async () => {
    await api?.close();
    await worker?.close();
    await nats?.dispose();
  });

  const ready = (t: TestSteward) => t.request({ method: "GET", url: "/ready", key: null });

  it("is ready when PostgreSQL, Redis and NATS answer", async () => {
    for (const t of [api, worker]) {
      const response = await ready(t);
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({
        status: "ready",
        checks: { database: "ok", redis: "ok", nats: "ok" },
        database: "postgres",
      });
    }
  });

  it("names NATS while it is stopped: the API degraded but ready, the worker not ready", async () => {
    await nats.stop();
    await until(async () => (await ready(worker)).statusCode === 503);
    const down = await ready(worker);
    expect(down.json().error).toMatchObject({
      code: "SERVICE_UNAVAILABLE",
      message: "Not ready: nats unreachable",
      details: { checks: { database: "ok", redis: "ok", nats: "failed" } },
    });
    const degraded = await ready(api);
    expect(degraded.statusCode).toBe(200);
    expect(degraded.json()).toEqual({
      status: "degraded",
      checks: { database: "ok", redis: "ok", nats: "failed" },
      database: "postgres",
    });
    // Liveness is about the process, not its dependencies.
    expect((await worker.request({ method: "GET", url: "/health", key: null })).statusCode).toBe(200);

    await nats.start();
    // The client retries every 2 s by default, so allow a few attempts.
    await until(async () => (await ready(worker)).statusCode === 200, 20_000);
    await until(async () => (await ready(api)).json().status === "ready", 20_000);
    expect((await ready(worker)).json().checks).toEqual({ database: "ok", redis: "ok", nats: "ok" });
  }, 40_000);
});

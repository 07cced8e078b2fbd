import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../helpers/eventually.js";
import { type RestartableNatsServer, startRestartableNatsServer } from "../helpers/nats-server.js";
import { uniqueRedisPrefix } from "../helpers/schema.js";
import { TEST_REDIS_URL } from "../helpers/services.js";
import { startTestSteward, type TestSteward } from "../helpers/steward.js";

/** Readiness checks PostgreSQL, Redis and NATS each, and says which one does not answer. */
describe("/ready with every dependency configured", () => {
  let nats: RestartableNatsServer;
  let t: TestSteward;

  beforeAll(async () => {
    // A NATS server of this test's own: stopping the shared one would break every other test.
    nats = await startRestartableNatsServer();
    t = await startTestSteward("postgres", {
      NATS_URL: nats.url,
      REDIS_URL: TEST_REDIS_URL,
      STEWARD_REDIS_PREFIX: uniqueRedisPrefix(),
      STEWARD_JOBS_STREAM: `READY_${randomBytes(4).toString("hex").toUpperCase()}`,
    });
  });
  afterAll(async () => {
    await t?.close();
    await nats?.dispose();
  });

  const ready = () => t.request({ method: "GET", url: "/ready", key: null });

  it("is ready when PostgreSQL, Redis and NATS answer", async () => {
    const response = await ready();
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      status: "ready",
      checks: { database: "ok", redis: "ok", nats: "ok" },
      database: "postgres",
    });
  });

  it("fails naming NATS while it is stopped, and recovers when it returns", async () => {
    await nats.stop();
    await until(async () => (await ready()).statusCode === 503);
    const down = await ready();
    expect(down.statusCode).toBe(503);
    expect(down.json().error).toMatchObject({
      code: "SERVICE_UNAVAILABLE",
      message: "Not ready: nats unreachable",
      details: { checks: { database: "ok", redis: "ok", nats: "failed" } },
    });
    // Liveness is about the process, not its dependencies.
    expect((await t.request({ method: "GET", url: "/health", key: null })).statusCode).toBe(200);

    await nats.start();
    // The client retries every 2 s by default, so allow a few attempts.
    await until(async () => (await ready()).statusCode === 200, 20_000);
    expect((await ready()).json().checks).toEqual({ database: "ok", redis: "ok", nats: "ok" });
  }, 40_000);
});

import { pino } from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Database } from "../../src/db/database.js";
import { DutyLeases } from "../../src/db/duty-leases.js";
import { PeriodicDuty } from "../../src/db/periodic-duty.js";
import { until } from "../helpers/eventually.js";
import { openTestDatabase } from "../helpers/schema.js";

const silent = pino({ level: "silent" });

/** Single background duties go to one replica at a time, through leases in PostgreSQL. */
describe("duty leases", () => {
  let database: Database;

  beforeAll(async () => {
    database = await openTestDatabase();
  });
  afterAll(async () => {
    await database?.close();
  });
  beforeEach(async () => {
    await database.pool.query("TRUNCATE duty_leases");
  });

  const replica = (holder: string, minLeaseMs?: number) =>
    new DutyLeases(database.db, silent, { holder, minLeaseMs });

  it("gives a duty to one replica, which keeps it while it renews", async () => {
    const [first, second] = [replica("api-1"), replica("api-2")];
    expect(await first.hold("heartbeat sweep", 1_000)).toBe(true);
    expect(await second.hold("heartbeat sweep", 1_000)).toBe(false);
    expect(await first.hold("heartbeat sweep", 1_000)).toBe(true);
    expect(await second.hold("heartbeat sweep", 1_000)).toBe(false);
    // Another duty is free for the other replica.
    expect(await second.hold("telemetry retention", 1_000)).toBe(true);
  });

  it("hands a duty over at once when its holder releases it on shutdown", async () => {
    const [first, second] = [replica("api-1"), replica("api-2")];
    expect(await first.hold("approval scheduler", 1_000)).toBe(true);
    await first.releaseAll();
    expect(await second.hold("approval scheduler", 1_000)).toBe(true);
    expect(await first.hold("approval scheduler", 1_000)).toBe(false);
  });

  it("hands a duty over once the lease of a holder that stopped renewing runs out", async () => {
    const [vanished, survivor] = [replica("api-1", 300), replica("api-2", 300)];
    expect(await vanished.hold("heartbeat sweep", 50)).toBe(true);
    expect(await survivor.hold("heartbeat sweep", 50)).toBe(false);
    // The first replica is gone (no renewal, no release): the other takes over after the lease.
    let takenOver = false;
    while (!takenOver) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      takenOver = await survivor.hold("heartbeat sweep", 50);
    }
    const holders = await database.pool.query(
      "SELECT holder FROM duty_leases WHERE duty = 'heartbeat sweep'",
    );
    expect(holders.rows).toEqual([{ holder: "api-2" }]);
  });

  it("lets exactly one of many replicas asking at once take a free duty", async () => {
    const replicas = Array.from({ length: 8 }, (_, index) => replica(`api-${index}`));
    const answers = await Promise.all(replicas.map((each) => each.hold("telemetry retention", 1_000)));
    expect(answers.filter(Boolean)).toHaveLength(1);
  });

  it("keeps a duty through a pass longer than its lease, so no other replica starts it beside it", async () => {
    let finishLongPass = () => {};
    let longPassStarted = false;
    let othersPasses = 0;
    const duty = (holder: string, pass: () => Promise<unknown>) =>
      new PeriodicDuty({
        duty: "long sweep",
        leases: replica(holder, 400),
        intervalMs: 100,
        logger: silent,
        pass,
      });
    const first = duty("api-1", async () => {
      longPassStarted = true;
      await new Promise<void>((resolve) => {
        finishLongPass = resolve;
      });
    });
    first.start();
    await until(() => longPassStarted);
    const second = duty("api-2", async () => {
      othersPasses += 1;
    });
    second.start();
    try {
      // Four leases' worth of time, the first replica's pass still under way.
      await new Promise((resolve) => setTimeout(resolve, 1_600));
      expect(othersPasses).toBe(0);
    } finally {
      finishLongPass();
      await first.stop();
      await second.stop();
    }
  });
});

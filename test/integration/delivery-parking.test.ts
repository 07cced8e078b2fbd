import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import { pino } from "pino";
import { Counter } from "prom-client";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../../src/db/database.js";
import { DutyLeases } from "../../src/db/duty-leases.js";
import { runMigrations } from "../../src/db/migrate.js";
import * as schema from "../../src/db/schema.js";
import { DeliveryStore } from "../../src/delivery/delivery-store.js";
import type { DeliveryTarget } from "../../src/delivery/delivery-target.js";
import { DeliveryWorker } from "../../src/delivery/delivery-worker.js";
import { parkPaused } from "../../src/delivery/parked-deliveries.js";
import { DELIVERED } from "../helpers/attempts.js";
import { until } from "../helpers/eventually.js";
import { openTestDatabase } from "../helpers/schema.js";

const LEASE_MS = 60_000;
const HOUR_MS = 3_600_000;
/** The paused endpoint's backlog: enough that reading through it is plain in a plan. */
const BACKLOG = 3_000;

/**
 * Rows for the tests, written directly: agents of `org_a`, platform deliveries, pauses;
 * and how many of an agent's deliveries wait parked.
 */
function rowsIn(database: () => Database) {
  const pool = () => database().pool;
  /** Batches queued so far: each batch's ids are its own. */
  let batches = 0;

  async function agent(name: string): Promise<string> {
    const id = `agt_${name}`;
    await pool().query(
      `INSERT INTO external_agents (id, organization_id, name, platform, webhook_url, auth_type)
       VALUES ($1, 'org_a', $1, 'slack', 'https://agent.example/invoke', 'none')`,
      [id],
    );
    return id;
  }

  /** Queues `count` platform deliveries for `agentId`, due `agoMs` ago and a millisecond apart after that. */
  async function queue(agentId: string, count: number, agoMs: number): Promise<string[]> {
    batches++;
    const { rows } = await pool().query<{ id: string }>(
      `INSERT INTO deliveries (id, organization_id, target, event_type, external_agent_id, invocation_id, platform,
                               next_attempt_at)
       SELECT 'dlv_' || $1 || '_' || $4 || '_' || lpad(g::text, 5, '0'), 'org_a', 'platform',
              'external_agent.invocation.completed', $1, 'inv_' || $1 || '_' || $4 || '_' || g, 'slack',
              now() - make_interval(secs => $3::double precision / 1000) + g * interval '1 millisecond'
         FROM generate_series(1, $2::int) AS g
       RETURNING id`,
      [agentId, count, agoMs, batches],
    );
    return rows.map((row) => row.id).sort();
  }

  async function pause(agentId: string): Promise<void> {
    await pool().query(
      "INSERT INTO delivery_endpoints (endpoint, organization_id, paused_at) VALUES ($1, 'org_a', now())",
      [`agent:${agentId}`],
    );
  }

  /** How many of the agent's unsent deliveries wait parked, and whether every one still says pending. */
  async function parkedOf(agentId: string): Promise<{ parked: number; pending: boolean }> {
    const { rows } = await pool().query<{ parked: number; pending: boolean }>(
      `SELECT count(*) FILTER (WHERE parked)::int AS parked, coalesce(bool_and(status = 'pending'), true) AS pending
         FROM deliveries WHERE external_agent_id = $1 AND status NOT IN ('delivering', 'delivered')`,
      [agentId],
    );
    return rows[0] ?? { parked: 0, pending: true };
  }

  return { agent, queue, pause, parkedOf };
}

/**
 * A paused endpoint's waiting deliveries are parked out of the due index, so claims stop
 * reading through them, and are due again once the pause is lifted: by a redelivery at
 * once, by a success within one pass of the release duty.
 */
describe("parked deliveries", () => {
  let database: Database;
  let store: DeliveryStore;
  /** The statements the store ran, as sent: the claim's is explained below. */
  const statements: Array<{ query: string; params: unknown[] }> = [];
  const { agent, queue, pause, parkedOf } = rowsIn(() => database);

  beforeAll(async () => {
    database = await openTestDatabase();
    const traced = drizzle(database.pool, {
      logger: { logQuery: (query, params) => statements.push({ query, params }) },
    });
    // Parking on every claim, so each claim here behaves the same whatever the clock says.
    store = new DeliveryStore(traced, LEASE_MS, { parkEveryMs: 0 });
  });
  afterAll(async () => {
    await database?.close();
  });
  beforeEach(async () => {
    statements.length = 0;
    await database.pool.query(
      "TRUNCATE delivery_attempts, deliveries, delivery_endpoints, duty_leases, external_agents CASCADE",
    );
  });

  interface PlanNode {
    "Index Name"?: string;
    "Actual Rows": number;
    "Actual Loops": number;
    "Rows Removed by Filter"?: number;
    Plans?: PlanNode[];
  }

  /** The plan's scans of `index`. */
  function scansOf(node: PlanNode, index: string): PlanNode[] {
    return [
      ...(node["Index Name"] === index ? [node] : []),
      ...(node.Plans ?? []).flatMap((child) => scansOf(child, index)),
    ];
  }

  /** Index entries a plan's scans of `index` read: the rows they passed on and those they filtered out. */
  function rowsRead(scans: readonly PlanNode[]): number {
    return scans.reduce(
      (sum, scan) =>
        sum + (scan["Actual Rows"] + (scan["Rows Removed by Filter"] ?? 0)) * scan["Actual Loops"],
      0,
    );
  }

  /**
   * Runs the claim statement the store last sent under EXPLAIN ANALYZE, with its settings,
   * after `before` (all rolled back), and answers how many rows it read from the due index.
   */
  async function dueRowsReadByClaim(before = ""): Promise<number> {
    const claim = statements.findLast((statement) =>
      statement.query.startsWith('update "deliveries" set "status"'),
    );
    if (!claim) throw new Error("no claim statement was sent");
    const client = await database.pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("SELECT set_config('enable_bitmapscan', 'off', true)");
      if (before) await client.query(before);
      const { rows } = await client.query<{ "QUERY PLAN": Array<{ Plan: PlanNode }> }>(
        `EXPLAIN (ANALYZE, FORMAT JSON) ${claim.query}`,
        claim.params,
      );
      const plan = rows[0]?.["QUERY PLAN"][0]?.Plan;
      if (!plan) throw new Error("no plan");
      const scans = scansOf(plan, "deliveries_due_unparked_idx");
      if (scans.length === 0) throw new Error("the claim did not walk the due index");
      return rowsRead(scans);
    } finally {
      await client.query("ROLLBACK");
      client.release();
    }
  }

  it("parks a paused endpoint's backlog, and claims the open endpoint's deliveries behind it", async () => {
    const down = await agent("down");
    const up = await agent("up");
    await queue(down, BACKLOG, 2 * HOUR_MS);
    const open = await queue(up, 6, HOUR_MS);
    await pause(down);
    await database.pool.query("ANALYZE deliveries");

    const claimed = await store.claim(16, 4, new Map());
    expect(claimed.map((row) => row.id)).toEqual(open.slice(0, 4));
    expect(await parkedOf(down)).toEqual({ parked: BACKLOG, pending: true });
    expect(await parkedOf(up)).toEqual({ parked: 0, pending: true });

    // The next claim walks past none of the paused rows: it reads the two open ones left.
    // The same statement with the backlog unparked reads through all of it, as claims did.
    expect(await store.claim(16, 4, new Map())).toHaveLength(2);
    expect(await dueRowsReadByClaim()).toBeLessThanOrEqual(2);
    expect(await dueRowsReadByClaim("UPDATE deliveries SET parked = false")).toBeGreaterThanOrEqual(BACKLOG);
  });

  it("parks at most a scan's worth per claim, and the next claims park the rest", async () => {
    const down = await agent("down");
    await queue(down, 6_000, HOUR_MS);
    await pause(down);
    await store.claim(16, 4, new Map());
    expect((await parkedOf(down)).parked).toBe(5_000);
    await store.claim(16, 4, new Map());
    expect((await parkedOf(down)).parked).toBe(6_000);
  });

  it("does not read the due index to park when no endpoint is paused", async () => {
    const up = await agent("up");
    await queue(up, 10, HOUR_MS);
    await store.claim(4, 4, new Map());
    const parking = statements.find((statement) => statement.query.includes("SET parked = true"));
    if (!parking) throw new Error("no parking statement was sent");
    const { rows } = await database.pool.query<{ "QUERY PLAN": Array<{ Plan: PlanNode }> }>(
      `EXPLAIN (ANALYZE, FORMAT JSON) ${parking.query}`,
      parking.params,
    );
    const plan = rows[0]?.["QUERY PLAN"][0]?.Plan;
    if (!plan) throw new Error("no plan");
    // The scan is in the plan, under a one-time filter that is false: it never runs.
    expect(scansOf(plan, "deliveries_due_unparked_idx").map((scan) => scan["Actual Loops"])).toEqual([0]);
    expect(await parkedOf(up)).toEqual({ parked: 0, pending: true });
  });

  it("unparks an endpoint's backlog on a redelivery, and claims it again", async () => {
    const down = await agent("down");
    const waiting = await queue(down, 50, HOUR_MS);
    await pause(down);
    expect(await store.claim(16, 4, new Map())).toEqual([]);
    expect((await parkedOf(down)).parked).toBe(50);

    expect(await store.requeue("org_a", eq(schema.deliveries.id, waiting[0] ?? ""))).toBe(1);
    expect(await parkedOf(down)).toEqual({ parked: 0, pending: true });
    const { rows } = await database.pool.query("SELECT 1 FROM delivery_endpoints");
    expect(rows).toEqual([]);
    const claimed = await store.claim(64, 64, new Map());
    expect(claimed).toHaveLength(50);
    await Promise.all(claimed.map((row) => store.recordAttempt(row, DELIVERED, HOUR_MS)));
    const { rows: statuses } = await database.pool.query(
      "SELECT DISTINCT status FROM deliveries WHERE external_agent_id = $1",
      [down],
    );
    expect(statuses).toEqual([{ status: "delivered" }]);
  });

  it("releases rows whose endpoint is no longer paused, and only those", async () => {
    const recovered = await agent("recovered");
    const still = await agent("still");
    // One delivery is out when the endpoint is paused; the others wait and are parked.
    await queue(recovered, 1, 2 * HOUR_MS);
    const [inFlight] = await store.claim(1, 1, new Map());
    if (!inFlight) throw new Error("expected a claim");
    await queue(recovered, 20, HOUR_MS);
    await queue(still, 10, HOUR_MS);
    await pause(recovered);
    await pause(still);
    await store.claim(16, 4, new Map());
    expect((await parkedOf(recovered)).parked).toBe(20);
    expect((await parkedOf(still)).parked).toBe(10);

    // Its success lifts the pause; its parked deliveries wait for the release.
    await store.recordAttempt(inFlight, DELIVERED, HOUR_MS);
    expect((await parkedOf(recovered)).parked).toBe(20);
    expect(await store.unparkResumed()).toBe(20);
    expect(await parkedOf(recovered)).toEqual({ parked: 0, pending: true });
    expect((await parkedOf(still)).parked).toBe(10);
    expect(await store.claim(64, 64, new Map())).toHaveLength(20);
  });

  it("leaves rows a claim parks while a redelivery lifts the pause to the release", async () => {
    const down = await agent("down");
    const [dead] = await queue(down, 1, 2 * HOUR_MS);
    await database.pool.query("UPDATE deliveries SET status = 'dead' WHERE id = $1", [dead]);
    await queue(down, 40, HOUR_MS);
    await pause(down);

    // A claim parks the waiting rows and has not committed when the redelivery unparks.
    const claiming = await database.pool.connect();
    try {
      await claiming.query("BEGIN");
      expect(await parkPaused(drizzle(claiming))).toBe(40);
      expect(await store.requeue("org_a", eq(schema.deliveries.id, dead ?? ""))).toBe(1);
      await claiming.query("COMMIT");
    } finally {
      claiming.release();
    }
    // The pause is gone, and the rows the claim parked stay parked until the release.
    expect((await parkedOf(down)).parked).toBe(40);
    expect(await store.unparkResumed()).toBe(40);
    expect(await store.claim(64, 64, new Map())).toHaveLength(41);
  });

  it("has the worker release them on one replica's duty, and deliver them", async () => {
    const recovered = await agent("recovered");
    await queue(recovered, 30, HOUR_MS);
    await pause(recovered);
    await store.claim(16, 4, new Map());
    expect((await parkedOf(recovered)).parked).toBe(30);
    // The pause is lifted without a redelivery (as a success does): nothing unparks the rows at once.
    await database.pool.query("DELETE FROM delivery_endpoints");

    const logger = pino({ level: "silent" });
    const target: DeliveryTarget = {
      prepare: async () => ({
        payload: { url: "https://platform.example/hook", headers: {}, body: "{}" },
        deliver: async () => ({ delivered: true, retryable: false, statusCode: 200 }),
      }),
    };
    const worker = new DeliveryWorker({
      store,
      targets: { platform: target, webhook: target, callback: target },
      send: async () => {
        throw new Error("the target delivers by itself");
      },
      logger,
      metrics: {
        deliveries: new Counter({
          name: "parking_test_deliveries",
          help: "-",
          labelNames: ["state"],
          registers: [],
        }),
      },
      retryDelaysMs: [1_000],
      pauseAfterMs: HOUR_MS,
      timeoutMs: 1_000,
      leases: new DutyLeases(database.db, logger),
      unparkIntervalMs: 50,
    });
    worker.start();
    try {
      const deliveredCount = async () =>
        (
          await database.pool.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM deliveries WHERE status = 'delivered'",
          )
        ).rows[0]?.n;
      await until(async () => (await deliveredCount()) === 30);
      expect(await deliveredCount()).toBe(30);
      const { rows } = await database.pool.query("SELECT duty FROM duty_leases");
      expect(rows).toEqual([{ duty: "parked delivery release" }]);
    } finally {
      await worker.stop();
    }
  });
});

/** The same statements on the embedded default's PGlite. */
describe("parked deliveries on the embedded database", () => {
  let database: Database;
  let dataDir: string;
  let store: DeliveryStore;
  const { agent, queue, pause, parkedOf } = rowsIn(() => database);

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "steward-parking-"));
    database = await openDatabase({ kind: "embedded", dataDir }, pino({ level: "silent" }));
    await runMigrations(database.pool, database.schema);
    await database.pool.query("INSERT INTO organizations (id, name) VALUES ('org_a', 'A')");
    store = new DeliveryStore(database.db, LEASE_MS, { parkEveryMs: 0 });
  });
  afterAll(async () => {
    await database?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("parks a paused endpoint's deliveries, claims the others, and resumes them on a redelivery or the release", async () => {
    const down = await agent("down");
    const up = await agent("up");
    const waiting = await queue(down, 200, 2 * HOUR_MS);
    const open = await queue(up, 3, HOUR_MS);
    await pause(down);

    expect((await store.claim(16, 4, new Map())).map((row) => row.id)).toEqual(open);
    expect(await parkedOf(down)).toEqual({ parked: 200, pending: true });

    expect(await store.requeue("org_a", eq(schema.deliveries.id, waiting[0] ?? ""))).toBe(1);
    expect(await parkedOf(down)).toEqual({ parked: 0, pending: true });
    expect(await store.claim(64, 64, new Map())).toHaveLength(64);

    // Paused again, its rest parked; the pause lifted without a redelivery: the release.
    await pause(down);
    await store.claim(16, 4, new Map());
    expect((await parkedOf(down)).parked).toBe(136);
    await database.pool.query("DELETE FROM delivery_endpoints");
    expect(await store.unparkResumed()).toBe(136);
    expect(await parkedOf(down)).toEqual({ parked: 0, pending: true });
  });
});

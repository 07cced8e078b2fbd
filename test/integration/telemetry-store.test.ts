import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../../src/db/database.js";
import { runMigrations } from "../../src/db/migrate.js";
import { pageRequest } from "../../src/http/pagination.js";
import { type AgentRef, type LogEntry, TelemetryStore } from "../../src/lifecycle/telemetry-store.js";
import { uniqueSchema } from "../helpers/schema.js";
import { TEST_DATABASE_URL } from "../helpers/services.js";

type StorageKind = "postgres" | "embedded";

const at = (iso: string) => new Date(`2024-01-01T${iso}Z`);
/** Most of 2024-01-01, where the tests write (retention aside). */
const DAY = { from: at("00:00:00"), to: at("23:00:00") };
const page = (number: number, limit: number) => pageRequest({ page: number, limit });
const entry = (level: LogEntry["level"], message: string, loggedAt: Date): LogEntry => ({
  level,
  message,
  context: { at: loggedAt.toISOString() },
  loggedAt,
});
const messages = (view: { items: Array<{ message: string }> }) => view.items.map((item) => item.message);

/** The same telemetry behaviour, checked on PostgreSQL and on the embedded PGlite. */
describe.each<StorageKind>(["postgres", "embedded"])("telemetry store on %s", (kind) => {
  let database: Database;
  let dataDir: string | undefined;
  let store: TelemetryStore;
  const orgA = `org_${randomBytes(4).toString("hex")}`;
  const orgB = `org_${randomBytes(4).toString("hex")}`;

  // A missing PostgreSQL fails here (in CI and everywhere else): integration tests never skip.
  beforeAll(async () => {
    const logger = pino({ level: "silent" });
    if (kind === "postgres") {
      database = await openDatabase(
        { kind, connectionString: TEST_DATABASE_URL, schema: uniqueSchema(), poolSize: 2 },
        logger,
      );
    } else {
      dataDir = await mkdtemp(join(tmpdir(), "steward-telemetry-"));
      database = await openDatabase({ kind, dataDir }, logger);
    }
    await runMigrations(database.pool, database.schema);
    await database.pool.query("INSERT INTO organizations (id, name) VALUES ($1, $1), ($2, $2)", [orgA, orgB]);
    store = new TelemetryStore(database.db);
  });
  afterAll(async () => {
    await database?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  /** A fresh running agent, so each test reads only its own rows. */
  async function newAgent(organizationId = orgA): Promise<AgentRef> {
    const id = `agent-${randomBytes(6).toString("hex")}`;
    await database.pool.query(
      `INSERT INTO managed_agents (id, organization_id, name, version, type, subscribed_topics, findings_topic, state)
       VALUES ($1, $2, $1, '1.0.0', 'agent', '{a.b}', 'f', 'running')`,
      [id, organizationId],
    );
    return { id, organizationId };
  }

  const count = async (table: string, agentId: string) =>
    (await database.pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE agent_id = $1`, [agentId]))
      .rows[0].n as number;

  describe("metrics", () => {
    it("aggregates each name into buckets, empty ones omitted, in [from, to)", async () => {
      const agent = await newAgent();
      await store.recordMetrics(agent, new Date("2023-12-31T23:59:59Z"), { cpu: 100 }); // before `from`
      await store.recordMetrics(agent, at("00:00:00"), { cpu: 1, memory: 10 });
      await store.recordMetrics(agent, at("00:00:59"), { cpu: 3 });
      await store.recordMetrics(agent, at("00:00:30"), { cpu: 2, memory: 20 });
      await store.recordMetrics(agent, at("00:01:30"), { cpu: 10 });
      await store.recordMetrics(agent, at("00:03:00"), { cpu: -4 });
      await store.recordMetrics(agent, at("00:04:00"), { cpu: 1000, memory: 1000 }); // at `to`: excluded

      const series = await store.metricSeries(orgA, agent.id, {
        from: at("00:00:00"),
        to: at("00:04:00"),
        stepS: 60,
      });
      expect(series).toEqual([
        {
          name: "cpu",
          points: [
            { t: "2024-01-01T00:00:00.000Z", count: 3, sum: 6, avg: 2, min: 1, max: 3 },
            { t: "2024-01-01T00:01:00.000Z", count: 1, sum: 10, avg: 10, min: 10, max: 10 },
            { t: "2024-01-01T00:03:00.000Z", count: 1, sum: -4, avg: -4, min: -4, max: -4 },
          ],
        },
        {
          name: "memory",
          points: [{ t: "2024-01-01T00:00:00.000Z", count: 2, sum: 30, avg: 15, min: 10, max: 20 }],
        },
      ]);
    });

    it("filters to one name", async () => {
      const agent = await newAgent();
      await store.recordMetrics(agent, at("10:00:00"), { cpu: 1, memory: 2, events_processed: 3 });
      const series = await store.metricSeries(orgA, agent.id, { name: "memory", ...DAY, stepS: 3600 });
      const point = { t: "2024-01-01T10:00:00.000Z", count: 1, sum: 2, avg: 2, min: 2, max: 2 };
      expect(series).toEqual([{ name: "memory", points: [point] }]);
    });

    it("starts buckets at multiples of the step since the epoch, not at `from`", async () => {
      const agent = await newAgent();
      const recordedAt = at("00:00:10");
      await store.recordMetrics(agent, recordedAt, { cpu: 1 });
      // 2024-01-01T00:00:00Z is 3 s past a multiple of 7 s.
      const series = await store.metricSeries(orgA, agent.id, { ...DAY, stepS: 7 });
      const seconds = recordedAt.getTime() / 1000;
      expect(series[0]?.points[0]?.t).toBe(new Date((seconds - (seconds % 7)) * 1000).toISOString());
    });

    it("refuses a step that is not a positive integer", async () => {
      const agent = await newAgent();
      const query = DAY;
      await expect(store.metricSeries(orgA, agent.id, { ...query, stepS: 0 })).rejects.toThrow(RangeError);
      await expect(store.metricSeries(orgA, agent.id, { ...query, stepS: 1.5 })).rejects.toThrow(RangeError);
    });

    it("stores one row per finite value and skips NaN and Infinity", async () => {
      const agent = await newAgent();
      await store.recordMetrics(agent, at("00:00:00"), {
        a: 1,
        b: Number.NaN,
        c: Number.POSITIVE_INFINITY,
        d: 0,
      });
      await store.recordMetrics(agent, at("00:00:01"), {});
      expect(await count("managed_agent_metrics", agent.id)).toBe(2);
    });

    it("answers the latest value of each name", async () => {
      const agent = await newAgent();
      await store.recordMetrics(agent, at("00:00:02"), { cpu: 2, memory: 7 });
      await store.recordMetrics(agent, at("00:00:01"), { cpu: 1 }); // arrives late, is older
      await store.recordMetrics(agent, at("00:00:03"), { cpu: 3 });
      expect(await store.latestMetrics(orgA, agent.id)).toEqual({
        cpu: { value: 3, recorded_at: "2024-01-01T00:00:03.000Z" },
        memory: { value: 7, recorded_at: "2024-01-01T00:00:02.000Z" },
      });
    });

    it("sums named metrics since a moment, 0 for names without rows", async () => {
      const agent = await newAgent();
      const other = await newAgent();
      await store.recordMetrics(agent, at("00:00:00"), { errors: 100, events_processed: 100 }); // before `since`
      await store.recordMetrics(agent, at("00:05:00"), { errors: 2, events_processed: 40 });
      await store.recordMetrics(agent, at("00:06:00"), { errors: 1, events_processed: 60 });
      await store.recordMetrics(other, at("00:06:00"), { errors: 50 });
      expect(
        await store.metricSums(agent.id, ["errors", "events_processed", "timeouts"], at("00:05:00")),
      ).toEqual({ errors: 3, events_processed: 100, timeouts: 0 });
      expect(await store.metricSums(agent.id, [], at("00:00:00"))).toEqual({});
    });

    it("shows nothing of an agent to another organization", async () => {
      const agent = await newAgent();
      await store.recordMetrics(agent, at("00:00:00"), { cpu: 1 });
      const query = { ...DAY, stepS: 60 };
      expect(await store.metricSeries(orgA, agent.id, query)).toHaveLength(1);
      expect(await store.metricSeries(orgB, agent.id, query)).toEqual([]);
      expect(await store.latestMetrics(orgB, agent.id)).toEqual({});
    });
  });

  describe("logs", () => {
    const LINES: LogEntry[] = [
      entry("trace", "tick", at("00:00:01")),
      entry("info", "Started", at("00:00:02")),
      entry("debug", "noise_level=1", at("00:00:03")),
      entry("warn", "Disk 100% full", at("00:00:04")),
      entry("error", "disk 100 full", at("00:00:05")),
      entry("fatal", "boom", at("00:00:06")),
    ];

    let agent: AgentRef;
    beforeAll(async () => {
      agent = await newAgent();
      await store.recordLogs(agent, LINES);
    });

    it("lists newest first with every field", async () => {
      const view = await store.logs(orgA, agent.id, {}, page(1, 20));
      expect(messages(view)).toEqual(LINES.map((line) => line.message).reverse());
      expect(view.items[0]).toEqual({
        id: expect.any(Number),
        level: "fatal",
        message: "boom",
        context: { at: "2024-01-01T00:00:06.000Z" },
        logged_at: "2024-01-01T00:00:06.000Z",
      });
    });

    it("keeps the minimum level and more severe ones", async () => {
      expect(messages(await store.logs(orgA, agent.id, { minLevel: "warn" }, page(1, 20)))).toEqual([
        "boom",
        "disk 100 full",
        "Disk 100% full",
      ]);
      expect((await store.logs(orgA, agent.id, { minLevel: "trace" }, page(1, 20))).total).toBe(6);
      expect((await store.logs(orgA, agent.id, { minLevel: "fatal" }, page(1, 20))).total).toBe(1);
    });

    it("searches messages case-insensitively, % and _ taken literally", async () => {
      expect(messages(await store.logs(orgA, agent.id, { q: "100%" }, page(1, 20)))).toEqual([
        "Disk 100% full",
      ]);
      expect(messages(await store.logs(orgA, agent.id, { q: "DISK" }, page(1, 20)))).toEqual([
        "disk 100 full",
        "Disk 100% full",
      ]);
      expect(messages(await store.logs(orgA, agent.id, { q: "e_l" }, page(1, 20)))).toEqual([
        "noise_level=1",
      ]);
      expect((await store.logs(orgA, agent.id, { q: "s_a" }, page(1, 20))).total).toBe(0);
    });

    it("bounds logged_at to [from, to)", async () => {
      const view = await store.logs(
        orgA,
        agent.id,
        { from: at("00:00:02"), to: at("00:00:04") },
        page(1, 20),
      );
      expect(messages(view)).toEqual(["noise_level=1", "Started"]);
    });

    it("pages with total and has_more", async () => {
      const first = await store.logs(orgA, agent.id, {}, page(1, 4));
      expect(first).toMatchObject({ total: 6, page: 1, limit: 4, has_more: true });
      expect(messages(first)).toEqual(["boom", "disk 100 full", "Disk 100% full", "noise_level=1"]);
      const second = await store.logs(orgA, agent.id, {}, page(2, 4));
      expect(second).toMatchObject({ total: 6, has_more: false });
      expect(messages(second)).toEqual(["Started", "tick"]);
    });

    it("shows nothing of an agent to another organization", async () => {
      const view = await store.logs(orgB, agent.id, {}, page(1, 20));
      expect(view).toMatchObject({ items: [], total: 0, has_more: false });
    });

    it("cuts long messages, drops huge contexts and replaces NUL", async () => {
      const other = await newAgent();
      await store.recordLogs(other, [
        { level: "info", message: "x".repeat(9_000), context: { small: true }, loggedAt: at("00:00:01") },
        { level: "info", message: "a\u0000b", context: { s: "y".repeat(20_000) }, loggedAt: at("00:00:02") },
      ]);
      const [second, first] = (await store.logs(orgA, other.id, {}, page(1, 20))).items;
      expect(first?.message).toHaveLength(8_000);
      expect(first?.context).toEqual({ small: true });
      expect(second?.message).toBe("a\uFFFDb");
      expect(second?.context).toEqual({ truncated: true });
    });

    it("stores a batch larger than one INSERT chunk", async () => {
      const other = await newAgent();
      const many = Array.from({ length: 2_500 }, (_, i) => entry("info", `line ${i}`, at("00:00:01")));
      await store.recordLogs(other, many);
      expect(await count("managed_agent_logs", other.id)).toBe(2_500);
    });
  });

  describe("retention", () => {
    it("deletes only rows older than the cutoff, in batches, and counts them", async () => {
      // Only this test writes before 2001, so the counts are exactly its own rows.
      const old = new Date("2000-01-01T00:00:00Z");
      const cutoff = new Date("2001-01-01T00:00:00Z");
      const agent = await newAgent();
      for (let i = 0; i < 7; i++) await store.recordMetrics(agent, new Date(old.getTime() + i), { cpu: i });
      await store.recordMetrics(agent, cutoff, { cpu: 99 });
      const oldLines = Array.from({ length: 8 }, (_, i) => entry("info", `old ${i}`, old));
      await store.recordLogs(agent, [...oldLines, entry("info", "kept", cutoff)]);

      // Batches of 3: the 7 and 8 old rows take several statements each.
      const pruning = new TelemetryStore(database.db, { pruneBatch: 3 });
      expect(await pruning.pruneOlderThan(cutoff)).toEqual({ metrics: 7, logs: 8 });
      expect(await count("managed_agent_metrics", agent.id)).toBe(1);
      expect(messages(await store.logs(orgA, agent.id, {}, page(1, 20)))).toEqual(["kept"]);
      expect(await pruning.pruneOlderThan(cutoff)).toEqual({ metrics: 0, logs: 0 });
    });
  });
});

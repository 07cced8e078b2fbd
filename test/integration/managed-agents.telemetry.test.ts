import { describe, expect, it } from "vitest";
import { AGENTS, fieldsOf, registerByHand, useAgentsDir } from "../helpers/managed-agents.js";
import { createKey } from "../helpers/steward.js";

/**
 * Managed agents through the API: heartbeats, metrics, logs and health as agents report them.
 * On PostgreSQL; each group runs its own Steward over this file's agents directory, so each
 * starts from the same start-time scan.
 */

const agentsDir = useAgentsDir();

describe("telemetry", () => {
  const api = agentsDir.useSteward();
  // A whole ten minutes, over half an hour ago: buckets of 60 s and of 600 s start on it.
  const base = Math.floor((Date.now() - 30 * 60_000) / 600_000) * 600_000;
  const at = (seconds: number) => new Date(base + seconds * 1000).toISOString();

  describe("happy path", () => {
    it("aggregates reported metrics into buckets of step seconds", async () => {
      const agent = await registerByHand(api);
      const reports = [
        { timestamp: at(5), errors: 2, cpu: 0.5 },
        { timestamp: at(30), errors: 4 },
        { timestamp: at(65), errors: 6, custom: { queue_depth: 3 } },
        { timestamp: at(200), errors: 100 },
      ];
      for (const report of reports) {
        const response = await api.post(`${AGENTS}/${agent.id}/metrics`, report, agent.token);
        expect(response.statusCode, response.body).toBe(202);
      }
      const query = `from=${encodeURIComponent(at(0))}&to=${encodeURIComponent(at(120))}&step=60`;
      const errors = await api.get(`${AGENTS}/${agent.id}/metrics?name=errors&${query}`);
      expect(errors.statusCode, errors.body).toBe(200);
      expect(errors.json()).toEqual({
        from: at(0),
        to: at(120),
        step: 60,
        series: [
          {
            name: "errors",
            points: [
              { t: at(0), count: 2, sum: 6, avg: 3, min: 2, max: 4 },
              { t: at(60), count: 1, sum: 6, avg: 6, min: 6, max: 6 },
            ],
          },
        ],
      });
      const all = (await api.get(`${AGENTS}/${agent.id}/metrics?${query}`)).json();
      expect(all.series.map((series: { name: string }) => series.name)).toEqual([
        "cpu",
        "errors",
        "queue_depth",
      ]);
      const wide = (
        await api.get(
          `${AGENTS}/${agent.id}/metrics?name=errors&from=${encodeURIComponent(at(0))}&to=${encodeURIComponent(at(600))}&step=600`,
        )
      ).json();
      expect(wide.series[0].points).toEqual([{ t: at(0), count: 4, sum: 112, avg: 28, min: 2, max: 100 }]);
    });

    it("filters logs by level and text, newest first, paginated", async () => {
      const agent = await registerByHand(api);
      const entries = [
        { level: "info", message: "disk check started", timestamp: at(1) },
        { level: "warn", message: "disk almost full", timestamp: at(2), context: { used: 0.93 } },
        { level: "error", message: "Disk full", timestamp: at(3) },
        { level: "warn", message: "cpu high", timestamp: at(4) },
        { level: "debug", message: "disk probe", timestamp: at(5) },
      ];
      const posted = await api.post(`${AGENTS}/${agent.id}/logs`, { entries }, agent.token);
      expect(posted.statusCode, posted.body).toBe(202);

      const filtered = await api.get(`${AGENTS}/${agent.id}/logs?level=warn&q=disk`);
      expect(filtered.statusCode, filtered.body).toBe(200);
      const page = filtered.json();
      expect(page.total).toBe(2);
      expect(page.items.map((item: { message: string }) => item.message)).toEqual([
        "Disk full",
        "disk almost full",
      ]);
      expect(page.items[1]).toMatchObject({ level: "warn", context: { used: 0.93 }, logged_at: at(2) });

      const first = (await api.get(`${AGENTS}/${agent.id}/logs?level=warn&limit=1`)).json();
      expect(first).toMatchObject({ total: 3, has_more: true });
      expect(first.items.map((item: { message: string }) => item.message)).toEqual(["cpu high"]);
      const second = (await api.get(`${AGENTS}/${agent.id}/logs?level=warn&limit=1&page=2`)).json();
      expect(second.items.map((item: { message: string }) => item.message)).toEqual(["Disk full"]);

      const window = `from=${encodeURIComponent(at(2))}&to=${encodeURIComponent(at(4))}`;
      const ranged = (await api.get(`${AGENTS}/${agent.id}/logs?${window}`)).json();
      expect(ranged.items.map((item: { message: string }) => item.message)).toEqual([
        "Disk full",
        "disk almost full",
      ]);
      // A % in the text is a literal, not a wildcard.
      expect((await api.get(`${AGENTS}/${agent.id}/logs?q=${encodeURIComponent("%")}`)).json().total).toBe(0);
    });

    it("a registered agent's first heartbeat makes it running; health shows the beat and uptime", async () => {
      const agent = await registerByHand(api);
      const before = (await api.get(`${AGENTS}/${agent.id}/health`)).json();
      expect(before).toMatchObject({
        state: "registered",
        last_heartbeat_at: null,
        uptime_s: null,
        health: "unknown",
      });

      const sentAt = new Date().toISOString();
      const beat = await api.post(
        `${AGENTS}/${agent.id}/heartbeat`,
        { agent_id: agent.id, status: "ok", timestamp: sentAt, uptime: 42 },
        agent.token,
      );
      expect(beat.statusCode, beat.body).toBe(202);
      const health = await api.get(`${AGENTS}/${agent.id}/health`, agent.token);
      expect(health.statusCode, health.body).toBe(200);
      expect(health.json()).toMatchObject({
        agent_id: agent.id,
        state: "running",
        health: "healthy",
        reported_status: "ok",
        uptime_s: 42,
        missed_heartbeats: 0,
      });
      expect(Date.parse(health.json().last_heartbeat_at)).toBeGreaterThan(Date.now() - 60_000);
      const history = (await api.get(`${AGENTS}/${agent.id}/status/history`)).json().items;
      expect(history.at(-1)).toMatchObject({ from: "registered", to: "running", reason: "first heartbeat" });
      expect((await api.get(`${AGENTS}/${agent.id}`)).json()).toMatchObject({
        state: "running",
        last_heartbeat: { status: "ok", uptime: 42, timestamp: sentAt },
      });
    });

    it("health lists the latest value of each metric", async () => {
      const agent = await registerByHand(api);
      await api.post(`${AGENTS}/${agent.id}/metrics`, { timestamp: at(10), cpu: 0.2 }, agent.token);
      await api.post(`${AGENTS}/${agent.id}/metrics`, { timestamp: at(20), cpu: 0.7 }, agent.token);
      const health = (await api.get(`${AGENTS}/${agent.id}/health`)).json();
      expect(health.metrics.cpu).toEqual({ value: 0.7, recorded_at: at(20) });
    });
  });

  describe("errors", () => {
    it("refuses malformed reports and queries with 400 naming the field", async () => {
      const agent = await registerByHand(api);
      const peer = await registerByHand(api);
      const wrongAgent = await api.post(`${AGENTS}/${agent.id}/heartbeat`, {
        agent_id: peer.id,
        status: "ok",
      });
      expect(wrongAgent.statusCode).toBe(400);
      expect(fieldsOf(wrongAgent)).toContain("agent_id");
      const negative = await api.post(`${AGENTS}/${agent.id}/metrics`, { errors: -1 });
      expect(negative.statusCode).toBe(400);
      expect(fieldsOf(negative)).toContain("errors");
      // Past what a window's sum can hold, a custom name off the pattern, a year PostgreSQL cannot store.
      const huge = await api.post(`${AGENTS}/${agent.id}/metrics`, { cpu: 1e308 });
      expect(fieldsOf(huge)).toEqual(["cpu"]);
      const badName = await api.post(`${AGENTS}/${agent.id}/metrics`, { custom: { "x y": 1 } });
      expect(badName.statusCode).toBe(400);
      expect(fieldsOf(badName)).toEqual(["custom.x y"]);
      const yearZero = await api.post(`${AGENTS}/${agent.id}/metrics`, {
        cpu: 1,
        timestamp: "0000-01-01T00:00:00Z",
      });
      expect(fieldsOf(yearZero)).toEqual(["timestamp"]);
      const yearZeroQuery = await api.get(`${AGENTS}/${agent.id}/logs?from=0000-01-01T00:00:00Z`);
      expect(fieldsOf(yearZeroQuery)).toEqual(["from"]);
      const badLevel = await api.post(`${AGENTS}/${agent.id}/logs`, {
        entries: [{ level: "loud", message: "x" }],
      });
      expect(badLevel.statusCode).toBe(400);
      const reversed = await api.get(
        `${AGENTS}/${agent.id}/metrics?from=${encodeURIComponent(at(60))}&to=${encodeURIComponent(at(0))}`,
      );
      expect(reversed.statusCode).toBe(400);
      expect(fieldsOf(reversed)).toContain("from");
      // Nothing was recorded, and the refused heartbeat did not start the agent.
      expect((await api.get(`${AGENTS}/${agent.id}`)).json()).toMatchObject({
        state: "registered",
        last_heartbeat_at: null,
      });
      expect((await api.get(`${AGENTS}/${agent.id}/logs`)).json().total).toBe(0);
    });

    it("answers 404 for telemetry of an unknown agent", async () => {
      const unknown = "agent-00000000-0000-0000-0000-000000000000";
      expect((await api.post(`${AGENTS}/${unknown}/heartbeat`, { status: "ok" })).statusCode).toBe(404);
      expect((await api.post(`${AGENTS}/${unknown}/metrics`, { errors: 1 })).statusCode).toBe(404);
      expect((await api.get(`${AGENTS}/${unknown}/health`)).statusCode).toBe(404);
      expect((await api.get(`${AGENTS}/${unknown}/logs`)).statusCode).toBe(404);
    });
  });

  describe("security", () => {
    it("an agent reports only for itself, and readers cannot report", async () => {
      const self = await registerByHand(api);
      const peer = await registerByHand(api);
      expect((await api.post(`${AGENTS}/${peer.id}/metrics`, { errors: 1 }, self.token)).statusCode).toBe(
        404,
      );
      expect(
        (
          await api.post(
            `${AGENTS}/${peer.id}/logs`,
            { entries: [{ level: "info", message: "x" }] },
            self.token,
          )
        ).statusCode,
      ).toBe(404);
      expect((await api.get(`${AGENTS}/${peer.id}/logs`, self.token)).statusCode).toBe(404);
      const viewer = await createKey(api.t, "viewer");
      expect((await api.post(`${AGENTS}/${peer.id}/heartbeat`, { status: "ok" }, viewer)).statusCode).toBe(
        403,
      );
      expect((await api.get(`${AGENTS}/${peer.id}/health`, viewer)).statusCode).toBe(200);
      expect((await api.get(`${AGENTS}/${peer.id}/logs`)).json().total).toBe(0);
      expect((await api.get(`${AGENTS}/${peer.id}`)).json().state).toBe("registered");
    });
  });
});

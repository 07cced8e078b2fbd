import { beforeAll, describe, expect, it } from "vitest";
import {
  AGENTS,
  definition,
  discoveredId,
  fieldsOf,
  registerByHand,
  SENTINEL_SCHEMA,
  useAgentsDir,
} from "../helpers/managed-agents.js";
import { createKey } from "../helpers/steward.js";

/**
 * Managed agents through the API: lifecycle states and their history, and layered,
 * versioned configuration.
 * On PostgreSQL; each group runs its own Steward over this file's agents directory, so each
 * starts from the same start-time scan.
 */

const agentsDir = useAgentsDir();

describe("lifecycle states", () => {
  const api = agentsDir.useSteward();
  const setStatus = (id: string, status: string, reason?: string, key?: string) =>
    api.put(`${AGENTS}/${id}/status`, reason === undefined ? { status } : { status, reason }, key);

  describe("happy path", () => {
    it("walks registered→running→stopped→running→failed→running and records each step in order", async () => {
      const { id } = await registerByHand(api);
      const steps: Array<[string, string]> = [
        ["running", "started by hand"],
        ["stopped", "maintenance"],
        ["running", "maintenance over"],
        ["failed", "crashed"],
        ["running", "recovered"],
      ];
      for (const [status, reason] of steps) {
        const response = await setStatus(id, status, reason);
        expect(response.statusCode, `${status}: ${response.body}`).toBe(200);
        expect(response.json().state).toBe(status);
      }
      const history = await api.get(`${AGENTS}/${id}/status/history`);
      expect(history.statusCode).toBe(200);
      const items = history.json().items;
      expect(items.map((item: { from: string | null; to: string }) => [item.from, item.to])).toEqual([
        [null, "registered"],
        ["registered", "running"],
        ["running", "stopped"],
        ["stopped", "running"],
        ["running", "failed"],
        ["failed", "running"],
      ]);
      expect(items.slice(1).map((item: { reason: string }) => item.reason)).toEqual(steps.map(([, r]) => r));
      const actors = new Set(
        items.map((item: { actor: { type: string; id: string } }) => JSON.stringify(item.actor)),
      );
      expect(actors.size).toBe(1);
      expect(items[0].actor.type).toBe("api_key");
      expect(items[0].actor.id).toEqual(expect.any(String));
      const times = items.map((item: { at: string }) => Date.parse(item.at));
      expect(times).toEqual([...times].sort((a, b) => a - b));
    });

    it("an agent changes its own status, recorded with itself as the actor", async () => {
      const agent = await registerByHand(api);
      const response = await setStatus(agent.id, "running", "self start", agent.token);
      expect(response.statusCode, response.body).toBe(200);
      const items = (await api.get(`${AGENTS}/${agent.id}/status/history`, agent.token)).json().items;
      expect(items.at(-1)).toMatchObject({
        to: "running",
        reason: "self start",
        actor: { type: "agent", id: agent.id },
      });
    });

    it("a deleted agent is gone: 404 afterwards, and out of the list", async () => {
      const viaStatus = await registerByHand(api);
      expect((await setStatus(viaStatus.id, "deleted", "retired")).statusCode).toBe(200);
      const viaDelete = await registerByHand(api);
      expect((await api.del(`${AGENTS}/${viaDelete.id}`)).statusCode).toBe(204);
      for (const id of [viaStatus.id, viaDelete.id]) {
        expect((await api.get(`${AGENTS}/${id}`)).statusCode).toBe(404);
        expect((await setStatus(id, "running")).statusCode).toBe(404);
        expect((await api.get(`${AGENTS}/${id}/status/history`)).statusCode).toBe(404);
        expect((await api.get(`${AGENTS}/${id}/config`)).statusCode).toBe(404);
        expect((await api.del(`${AGENTS}/${id}`)).statusCode).toBe(404);
      }
      const listed = (await api.get(`${AGENTS}?limit=100`))
        .json()
        .items.map((agent: { id: string }) => agent.id);
      expect(listed).not.toContain(viaStatus.id);
      expect(listed).not.toContain(viaDelete.id);
      // The same package may be registered again once the old one is deleted.
      expect((await api.post(AGENTS, definition({ name: viaStatus.agent.name }))).statusCode).toBe(201);
    });
  });

  describe("errors", () => {
    it("refuses registered→stopped with 409 naming the allowed states, and changes nothing", async () => {
      const { id } = await registerByHand(api);
      const response = await setStatus(id, "stopped");
      expect(response.statusCode).toBe(409);
      const error = response.json().error;
      expect(error.code).toBe("CONFLICT");
      expect(error.details.allowed).toEqual(["running", "deleted"]);
      expect(error.details.current).toBe("registered");
      expect((await api.get(`${AGENTS}/${id}`)).json().state).toBe("registered");
      expect((await api.get(`${AGENTS}/${id}/status/history`)).json().total).toBe(1);
    });

    it("refuses every other transition outside the table", async () => {
      const discovered = await discoveredId(api, "log-sentinel");
      const fromDiscovered = await setStatus(discovered, "running");
      expect(fromDiscovered.statusCode).toBe(409);
      expect(fromDiscovered.json().error.details.allowed).toEqual(["registered", "deleted"]);
      const { id } = await registerByHand(api);
      expect((await setStatus(id, "registered")).statusCode).toBe(409);
      expect((await setStatus(id, "running")).statusCode).toBe(200);
      const back = await setStatus(id, "registered");
      expect(back.statusCode).toBe(409);
      expect(back.json().error.details.allowed).toEqual(["stopped", "failed", "deleted"]);
      expect((await setStatus(id, "discovered")).statusCode).toBe(409);
    });

    it("answers 400 for an unknown state and 404 for an unknown agent", async () => {
      const { id } = await registerByHand(api);
      const unknown = await setStatus(id, "paused");
      expect(unknown.statusCode).toBe(400);
      expect(fieldsOf(unknown)).toContain("status");
      expect((await setStatus("agent-00000000-0000-0000-0000-000000000000", "running")).statusCode).toBe(404);
    });
  });

  describe("security", () => {
    it("readers cannot change a state", async () => {
      const { id } = await registerByHand(api);
      for (const role of ["viewer", "auditor", "developer"]) {
        const key = await createKey(api.t, role);
        expect((await setStatus(id, "running", undefined, key)).statusCode, role).toBe(403);
        expect((await api.get(`${AGENTS}/${id}/status/history`, key)).statusCode, role).toBe(200);
      }
      expect((await api.put(`${AGENTS}/${id}/status`, { status: "running" }, null)).statusCode).toBe(401);
      expect((await api.get(`${AGENTS}/${id}`)).json().state).toBe("registered");
    });
  });
});

describe("configuration", () => {
  const api = agentsDir.useSteward(() => ({
    STEWARD_AGENT_LOG_SENTINEL_THRESHOLD: "20",
    STEWARD_AGENT_LOG_SENTINEL_REGION: "eu-west-1",
  }));
  let id: string;
  let token: string;
  beforeAll(async () => {
    id = await discoveredId(api, "log-sentinel");
    const response = await api.post(AGENTS, { agent_id: id });
    expect(response.statusCode, response.body).toBe(201);
    token = response.json().credentials.token;
  });
  const getConfig = async () => {
    const response = await api.get(`${AGENTS}/${id}/config`);
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };

  describe("happy path", () => {
    it("layers defaults < environment < stored < overrides, naming each key's source", async () => {
      expect(await getConfig()).toEqual({
        agent_id: id,
        version: 0,
        config: { threshold: 20, mode: "fast", region: "eu-west-1" },
        sources: { threshold: "environment", mode: "default", region: "environment" },
      });

      const stored = await api.put(`${AGENTS}/${id}/config`, { threshold: 30 });
      expect(stored.statusCode, stored.body).toBe(200);
      expect(stored.json()).toEqual({
        agent_id: id,
        version: 1,
        config: { threshold: 30, mode: "fast", region: "eu-west-1" },
        sources: { threshold: "stored", mode: "default", region: "environment" },
      });

      const overridden = await api.put(`${AGENTS}/${id}/config/overrides`, { threshold: 40 });
      expect(overridden.statusCode, overridden.body).toBe(200);
      expect(overridden.json()).toMatchObject({
        version: 1,
        config: { threshold: 40 },
        sources: { threshold: "override", region: "environment" },
      });
      expect(await getConfig()).toMatchObject({
        version: 1,
        config: { threshold: 40 },
        sources: { threshold: "override" },
      });

      const cleared = await api.put(`${AGENTS}/${id}/config/overrides`, {});
      expect(cleared.statusCode).toBe(200);
      expect(cleared.json()).toMatchObject({ config: { threshold: 30 }, sources: { threshold: "stored" } });
    });

    it("keeps every version, newest first, with author and diffs; rollback is a PUT of an old version", async () => {
      const agent = await registerByHand(api, { config_schema: SENTINEL_SCHEMA });
      const url = `${AGENTS}/${agent.id}/config`;
      const v1 = { threshold: 5, mode: "thorough" };
      const v2 = { threshold: 7, region: "us-east-1" };
      expect((await api.put(url, v1)).statusCode).toBe(200);
      expect((await api.put(url, v2, agent.token)).statusCode).toBe(200);

      const history = async () => {
        const response = await api.get(`${url}/history`);
        expect(response.statusCode, response.body).toBe(200);
        return response.json().items;
      };
      const [second, first] = await history();
      expect(first).toMatchObject({
        version: 1,
        config: v1,
        author: { type: "api_key" },
        diff: { added: v1, removed: [], changed: {} },
      });
      expect(second).toMatchObject({ version: 2, config: v2, author: { type: "agent", id: agent.id } });
      expect(second.diff).toEqual({
        added: { region: "us-east-1" },
        removed: ["mode"],
        changed: { threshold: { from: 5, to: 7 } },
      });
      expect(Date.parse(first.created_at)).toBeLessThanOrEqual(Date.parse(second.created_at));

      // Rollback: PUT version 1's config again.
      const rollback = await api.put(url, first.config);
      expect(rollback.statusCode).toBe(200);
      expect(rollback.json()).toMatchObject({
        version: 3,
        config: v1,
        sources: { threshold: "stored", mode: "stored" },
      });
      const versions = await history();
      expect(versions.map((item: { version: number }) => item.version)).toEqual([3, 2, 1]);
      expect(versions[0].config).toEqual(versions[2].config);
      expect(versions[0].diff).toEqual({
        added: { mode: "thorough" },
        removed: ["region"],
        changed: { threshold: { from: 7, to: 5 } },
      });
      // Paged, the oldest item of a page still diffs against the version before it.
      const paged = (await api.get(`${url}/history?limit=1&page=2`)).json();
      expect(paged).toMatchObject({ total: 3, has_more: true });
      expect(paged.items[0]).toMatchObject({ version: 2, diff: second.diff });
    });

    it("an agent registered with a config_schema gets that schema's defaults, like a package", async () => {
      const schema = {
        type: "object",
        properties: { level: { type: "string", default: "info" }, batch: { type: "integer", default: 50 } },
      };
      const agent = await registerByHand(api, { config_schema: schema });
      expect(agent.agent.config_schema).toEqual(schema);
      const config = (await api.get(`${AGENTS}/${agent.id}/config`)).json();
      expect(config).toMatchObject({
        version: 0,
        config: { level: "info", batch: 50 },
        sources: { level: "default", batch: "default" },
      });
      const stored = (await api.put(`${AGENTS}/${agent.id}/config`, { batch: 10 })).json();
      expect(stored).toMatchObject({
        config: { level: "info", batch: 10 },
        sources: { level: "default", batch: "stored" },
      });
    });

    it("diffs the very first version against nothing", async () => {
      const agent = await registerByHand(api);
      expect((await api.put(`${AGENTS}/${agent.id}/config`, { anything: [1, 2] })).statusCode).toBe(200);
      const [only] = (await api.get(`${AGENTS}/${agent.id}/config/history`)).json().items;
      expect(only).toMatchObject({
        version: 1,
        diff: { added: { anything: [1, 2] }, removed: [], changed: {} },
      });
    });
  });

  describe("errors", () => {
    it("refuses a config that breaks the agent's schema (400, field config.<key>) and stores nothing", async () => {
      const before = await getConfig();
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ threshold: 0 }, "config.threshold"],
        [{ threshold: "high" }, "config.threshold"],
        [{ mode: "sloppy" }, "config.mode"],
        [{ colour: "red" }, "config.colour"],
      ];
      for (const [config, field] of cases) {
        const response = await api.put(`${AGENTS}/${id}/config`, config);
        expect(response.statusCode, JSON.stringify(config)).toBe(400);
        expect(response.json().error.code).toBe("VALIDATION_ERROR");
        expect(fieldsOf(response)).toContain(field);
      }
      expect(await getConfig()).toEqual(before);
      const notObject = await api.put(`${AGENTS}/${id}/config`, [1, 2]);
      expect(notObject.statusCode).toBe(400);
    });

    it("refuses runtime overrides that break the agent's schema, and keeps the ones in force", async () => {
      expect((await api.put(`${AGENTS}/${id}/config/overrides`, { mode: "thorough" })).statusCode).toBe(200);
      const before = await getConfig();
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ threshold: "high" }, "config.threshold"],
        [{ mode: "sloppy" }, "config.mode"],
        [{ colour: "red" }, "config.colour"],
      ];
      for (const [overrides, field] of cases) {
        const response = await api.put(`${AGENTS}/${id}/config/overrides`, overrides);
        expect(response.statusCode, JSON.stringify(overrides)).toBe(400);
        expect(fieldsOf(response)).toContain(field);
      }
      expect(await getConfig()).toEqual(before);
      expect((await api.put(`${AGENTS}/${id}/config/overrides`, {})).statusCode).toBe(200);
    });

    it("answers 404 for an unknown agent", async () => {
      const unknown = "agent-00000000-0000-0000-0000-000000000000";
      expect((await api.get(`${AGENTS}/${unknown}/config`)).statusCode).toBe(404);
      expect((await api.put(`${AGENTS}/${unknown}/config`, {})).statusCode).toBe(404);
      expect((await api.get(`${AGENTS}/${unknown}/config/history`)).statusCode).toBe(404);
    });
  });

  describe("security", () => {
    it("readers see the config but cannot change it", async () => {
      const before = await getConfig();
      for (const role of ["viewer", "auditor", "developer"]) {
        const key = await createKey(api.t, role);
        expect((await api.get(`${AGENTS}/${id}/config`, key)).statusCode, role).toBe(200);
        expect((await api.get(`${AGENTS}/${id}/config/history`, key)).statusCode, role).toBe(200);
        expect((await api.put(`${AGENTS}/${id}/config`, { threshold: 3 }, key)).statusCode, role).toBe(403);
        expect(
          (await api.put(`${AGENTS}/${id}/config/overrides`, { threshold: 3 }, key)).statusCode,
          role,
        ).toBe(403);
      }
      // The agent itself reads the same effective config.
      expect((await api.get(`${AGENTS}/${id}/config`, token)).json()).toEqual(before);
      expect(await getConfig()).toEqual(before);
    });
  });
});

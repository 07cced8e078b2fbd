import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  AGENTS,
  BROKEN,
  definition,
  discoveredId,
  fieldsOf,
  ID_PATTERN,
  registerByHand,
  SENTINEL_SCHEMA,
  useAgentsDir,
} from "../helpers/managed-agents.js";
import { createKey, createOrgWithKey } from "../helpers/steward.js";

/**
 * Managed agents through the API: discovery from a real agents directory (the start-time
 * scan, per-organization scans, the discovery report) and self-registration with discovery tokens.
 * On PostgreSQL; each group runs its own Steward over this file's agents directory, so each
 * starts from the same start-time scan.
 */

const agentsDir = useAgentsDir();

describe("discovery", () => {
  const api = agentsDir.useSteward();

  describe("happy path", () => {
    it("the start-time scan put exactly the two valid packages into the default organization", async () => {
      const response = await api.get(`${AGENTS}?state=discovered`);
      expect(response.statusCode, response.body).toBe(200);
      const page = response.json();
      expect(page.total).toBe(2);
      const byName = Object.fromEntries(page.items.map((agent: { name: string }) => [agent.name, agent]));
      expect(Object.keys(byName).sort()).toEqual(["cost-watcher", "log-sentinel"]);
      expect(byName["log-sentinel"]).toMatchObject({
        organization_id: "default",
        state: "discovered",
        version: "1.2.0",
        description: "Watches logs for trouble",
        type: "sentinel",
        tags: ["logs", "security"],
        subscribed_topics: ["logs.>", "audit.*"],
        findings_topic: "findings.logs",
        resource_hints: { memory: "256Mi" },
        command: null,
        managed_process: false,
      });
      expect(byName["log-sentinel"].id).toMatch(/^sentinel-/);
      expect(byName["cost-watcher"]).toMatchObject({ organization_id: "default", type: "agent" });
      expect(byName["cost-watcher"].id).toMatch(/^agent-/);
      for (const agent of page.items) expect(agent.id).toMatch(ID_PATTERN);
      const all = (await api.get(AGENTS)).json();
      expect(all.total).toBe(2);
    });

    it("a package with config.schema.json exposes config_schema, and its defaults show with source default", async () => {
      const sentinel = await discoveredId(api, "log-sentinel");
      const agent = (await api.get(`${AGENTS}/${sentinel}`)).json();
      expect(agent.config_schema).toEqual(SENTINEL_SCHEMA);
      const config = await api.get(`${AGENTS}/${sentinel}/config`);
      expect(config.statusCode, config.body).toBe(200);
      expect(config.json()).toEqual({
        agent_id: sentinel,
        version: 0,
        config: { threshold: 10, mode: "fast" },
        sources: { threshold: "default", mode: "default" },
      });
      const watcher = (await api.get(`${AGENTS}/${await discoveredId(api, "cost-watcher")}`)).json();
      expect(watcher.config_schema).toBeNull();
    });

    it("a scan by another organization's admin creates its own copies; a rescan creates nothing new", async () => {
      const before = (await api.get(`${AGENTS}?state=discovered`))
        .json()
        .items.map((a: { id: string }) => a.id);
      const other = await createOrgWithKey(api.t, "admin");
      const scan = await api.post(`${AGENTS}/discover`, undefined, other.key);
      expect(scan.statusCode, scan.body).toBe(200);
      const report = scan.json();
      expect(report.agents).toHaveLength(2);
      expect(report.agents.every((agent: { created: boolean }) => agent.created)).toBe(true);
      const ids = report.agents.map((agent: { id: string }) => agent.id);
      for (const id of ids) expect(before).not.toContain(id);

      const listed = (await api.get(`${AGENTS}?state=discovered`, other.key)).json();
      expect(listed.total).toBe(2);
      expect(listed.items.map((a: { organization_id: string }) => a.organization_id)).toEqual([
        other.organizationId,
        other.organizationId,
      ]);

      const rescan = (await api.post(`${AGENTS}/discover`, undefined, other.key)).json();
      expect(rescan.agents.map((agent: { created: boolean }) => agent.created)).toEqual([false, false]);
      expect(rescan.agents.map((agent: { id: string }) => agent.id).sort()).toEqual([...ids].sort());
      expect((await api.get(AGENTS, other.key)).json().total).toBe(2);
      // The default organization's agents are untouched by the other's scans.
      expect((await api.get(AGENTS)).json().total).toBe(2);
    });
  });

  describe("errors", () => {
    it("the discovery report lists the three broken packages with their files and a reason naming the field", async () => {
      const response = await api.get(`${AGENTS}/discovery-report`);
      expect(response.statusCode, response.body).toBe(200);
      const report = response.json();
      expect(report.directory).toBe(path.resolve(agentsDir.path));
      expect(report.directory_missing).toBe(false);
      expect(report.agents.map((agent: { name: string }) => agent.name).sort()).toEqual([
        "cost-watcher",
        "log-sentinel",
      ]);
      expect(report.problems).toHaveLength(3);
      const reasonOf = (folder: string) =>
        report.problems.find(
          (problem: { file: string }) =>
            problem.file === path.join(path.resolve(agentsDir.path), folder, ".env.discovery"),
        )?.reason as string | undefined;
      expect(reasonOf("missing-field")).toContain("DEFAULT_FINDINGS_TOPIC");
      expect(reasonOf("bad-version")).toContain("AGENT_VERSION");
      expect(reasonOf("bad-subject")).toContain("DEFAULT_SUBSCRIBED_TOPICS");
    });

    it("registers nothing of a broken package", async () => {
      for (const name of Object.values(BROKEN)) {
        const response = await api.get(`${AGENTS}?name=${name}`);
        expect(response.json().total, name).toBe(0);
      }
    });

    it("an organization that never scanned has no report (404)", async () => {
      const other = await createOrgWithKey(api.t, "admin");
      const response = await api.get(`${AGENTS}/discovery-report`, other.key);
      expect(response.statusCode).toBe(404);
      expect(response.json().error.code).toBe("NOT_FOUND");
    });
  });

  describe("security", () => {
    it("readers see the report but may not scan; without a key nothing answers", async () => {
      for (const role of ["viewer", "auditor", "developer"]) {
        const key = await createKey(api.t, role);
        expect((await api.get(`${AGENTS}/discovery-report`, key)).statusCode, role).toBe(200);
        expect((await api.post(`${AGENTS}/discover`, undefined, key)).statusCode, role).toBe(403);
      }
      expect((await api.post(`${AGENTS}/discover`, undefined, null)).statusCode).toBe(401);
      expect((await api.get(`${AGENTS}/discovery-report`, null)).statusCode).toBe(401);
    });
  });
});

describe("discovery tokens", () => {
  const api = agentsDir.useSteward();
  const selfRegister = (token: string, overrides: Record<string, unknown> = {}) =>
    api.post(`${AGENTS}/register`, { discovery_token: token, ...definition(overrides) }, null);
  const newToken = async (key?: string) => {
    const response = await api.post(`${AGENTS}/discovery-tokens`, undefined, key);
    expect(response.statusCode, response.body).toBe(201);
    return response.json().token as string;
  };

  describe("happy path", () => {
    it("creates a token an agent registers itself with (201), and the token it gets works", async () => {
      const created = await api.post(`${AGENTS}/discovery-tokens`, { ttl_s: 300 });
      expect(created.statusCode, created.body).toBe(201);
      const { id, token, expires_at } = created.json();
      expect(id).toEqual(expect.any(String));
      expect(token).toMatch(/^sdt_/);
      expect(Date.parse(expires_at) - Date.now()).toBeGreaterThan(250_000);
      expect(Date.parse(expires_at) - Date.now()).toBeLessThanOrEqual(300_000);

      const registered = await selfRegister(token, { type: "probe" });
      expect(registered.statusCode, registered.body).toBe(201);
      const { agent, credentials } = registered.json();
      expect(agent).toMatchObject({ state: "registered", organization_id: "default", type: "probe" });
      expect(agent.id).toMatch(ID_PATTERN);
      expect((await api.get(`${AGENTS}/${agent.id}`, credentials.token)).statusCode).toBe(200);
      const history = (await api.get(`${AGENTS}/${agent.id}/status/history`)).json();
      expect(history.items[0].actor.type).toBe("system");
      expect(history.items[0].actor.id).toBe(`discovery_token:${id}`);
    });

    it("registers the discovered agent of the same name and version instead of a new one", async () => {
      const discovered = await discoveredId(api, "cost-watcher");
      const response = await selfRegister(await newToken(), { name: "cost-watcher", version: "0.3.1" });
      expect(response.statusCode, response.body).toBe(201);
      expect(response.json().agent).toMatchObject({ id: discovered, state: "registered" });
      expect((await api.get(`${AGENTS}?name=cost-watcher`)).json().total).toBe(1);
    });

    it("a token of another organization registers into that organization", async () => {
      const other = await createOrgWithKey(api.t, "admin");
      const response = await selfRegister(await newToken(other.key));
      expect(response.statusCode, response.body).toBe(201);
      const id = response.json().agent.id;
      expect(response.json().agent.organization_id).toBe(other.organizationId);
      const seen = await api.get(`${AGENTS}/${id}`, other.key);
      expect(seen.statusCode).toBe(200);
      expect(seen.json().organization_id).toBe(other.organizationId);
      expect((await api.get(`${AGENTS}/${id}`)).statusCode).toBe(404);

      // A package both organizations discovered: the token's organization's copy is registered.
      const scan = (await api.post(`${AGENTS}/discover`, undefined, other.key)).json();
      const theirCopy = scan.agents.find((agent: { name: string }) => agent.name === "log-sentinel").id;
      const ourCopy = await discoveredId(api, "log-sentinel");
      const adopted = await selfRegister(await newToken(other.key), {
        name: "log-sentinel",
        version: "1.2.0",
      });
      expect(adopted.statusCode, adopted.body).toBe(201);
      expect(adopted.json().agent).toMatchObject({ id: theirCopy, organization_id: other.organizationId });
      expect((await api.get(`${AGENTS}/${ourCopy}`)).json().state).toBe("discovered");
    });
  });

  describe("errors", () => {
    it("a token is single use: the second registration answers 401", async () => {
      const token = await newToken();
      expect((await selfRegister(token)).statusCode).toBe(201);
      const again = await selfRegister(token);
      expect(again.statusCode).toBe(401);
      expect(again.json().error.code).toBe("UNAUTHORIZED");
      expect((await selfRegister("sdt_never-issued")).statusCode).toBe(401);
    });

    it("a refused definition does not spend the token", async () => {
      const token = await newToken();
      const badVersion = await selfRegister(token, { version: "1.2" });
      expect(badVersion.statusCode).toBe(400);
      expect(fieldsOf(badVersion)).toContain("version");
      const badSubject = await selfRegister(token, { findings_topic: "a.*" });
      expect(badSubject.statusCode).toBe(400);
      expect(fieldsOf(badSubject)).toContain("findings_topic");
      const { findings_topic: _omitted, ...incomplete } = definition();
      const missing = await api.post(`${AGENTS}/register`, { discovery_token: token, ...incomplete }, null);
      expect(missing.statusCode).toBe(400);
      expect(fieldsOf(missing)).toContain("findings_topic");
      const taken = await registerByHand(api);
      const conflict = await selfRegister(token, { name: taken.agent.name });
      expect(conflict.statusCode).toBe(409);

      const good = await selfRegister(token);
      expect(good.statusCode, good.body).toBe(201);
    });

    it("refuses a lifetime outside 60 s to a day", async () => {
      const response = await api.post(`${AGENTS}/discovery-tokens`, { ttl_s: 5 });
      expect(response.statusCode).toBe(400);
      expect(fieldsOf(response)).toContain("ttl_s");
    });
  });

  describe("security", () => {
    it("only agents:manage creates discovery tokens", async () => {
      for (const role of ["viewer", "auditor", "developer"]) {
        const key = await createKey(api.t, role);
        expect((await api.post(`${AGENTS}/discovery-tokens`, undefined, key)).statusCode, role).toBe(403);
      }
      expect((await api.post(`${AGENTS}/discovery-tokens`, undefined, null)).statusCode).toBe(401);
    });

    it("an agent's own token cannot create discovery tokens or stand in for one", async () => {
      const agent = await registerByHand(api);
      expect((await api.post(`${AGENTS}/discovery-tokens`, undefined, agent.token)).statusCode).toBe(403);
      // A JWT is longer than any discovery token: refused as malformed or as unknown, never registered.
      expect([400, 401]).toContain((await selfRegister(agent.token)).statusCode);
      expect((await selfRegister(api.t.adminKey)).statusCode).toBe(401);
    });
  });
});

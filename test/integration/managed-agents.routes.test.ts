import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../helpers/eventually.js";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import {
  createKey,
  createOrgWithKey,
  invokeEnv,
  registerAgent,
  startTestSteward,
  type TestSteward,
} from "../helpers/steward.js";

/**
 * Managed agents through the API, as a client sees them: discovery from a real agents
 * directory, registration, agent tokens, lifecycle states, layered config, telemetry,
 * access control and alerts, on PostgreSQL. Each group runs its own Steward over the
 * same agents directory, so each starts from the same start-time scan.
 */

const AGENTS = "/api/v1/agents";
const ID_PATTERN = /^[a-z][a-z0-9-]*-[0-9a-f-]{36}$/;

const SENTINEL_SCHEMA = {
  type: "object",
  properties: {
    threshold: { type: "integer", minimum: 1, default: 10 },
    mode: { type: "string", enum: ["fast", "thorough"], default: "fast" },
    region: { type: "string" },
  },
  additionalProperties: false,
};

/** Package folders of the agents directory: two valid, three broken (one field each). */
const PACKAGES: Record<string, { env: Record<string, string>; schema?: object }> = {
  "log-sentinel": {
    env: {
      AGENT_NAME: "log-sentinel",
      AGENT_VERSION: "1.2.0",
      AGENT_DESCRIPTION: "Watches logs for trouble",
      DEFAULT_SUBSCRIBED_TOPICS: "logs.>,audit.*",
      DEFAULT_FINDINGS_TOPIC: "findings.logs",
      AGENT_TYPE: "sentinel",
      AGENT_TAGS: "logs,security",
      AGENT_RESOURCE_MEMORY: "256Mi",
    },
    schema: SENTINEL_SCHEMA,
  },
  "cost-watcher": {
    env: {
      AGENT_NAME: "cost-watcher",
      AGENT_VERSION: "0.3.1",
      AGENT_DESCRIPTION: "Watches spending",
      DEFAULT_SUBSCRIBED_TOPICS: "billing.events",
      DEFAULT_FINDINGS_TOPIC: "findings.cost",
    },
  },
  "missing-field": {
    env: {
      AGENT_NAME: "missing-findings",
      AGENT_VERSION: "1.0.0",
      AGENT_DESCRIPTION: "Has no findings topic",
      DEFAULT_SUBSCRIBED_TOPICS: "x.y",
    },
  },
  "bad-version": {
    env: {
      AGENT_NAME: "bad-version",
      AGENT_VERSION: "1.2",
      AGENT_DESCRIPTION: "Version is not semver",
      DEFAULT_SUBSCRIBED_TOPICS: "x.y",
      DEFAULT_FINDINGS_TOPIC: "findings.x",
    },
  },
  "bad-subject": {
    env: {
      AGENT_NAME: "bad-subject",
      AGENT_VERSION: "1.0.0",
      AGENT_DESCRIPTION: "Subscribes to a broken subject",
      DEFAULT_SUBSCRIBED_TOPICS: "logs..x",
      DEFAULT_FINDINGS_TOPIC: "findings.x",
    },
  },
};
const BROKEN = {
  "missing-field": "missing-findings",
  "bad-version": "bad-version",
  "bad-subject": "bad-subject",
};

let agentsDir: string;
beforeAll(async () => {
  agentsDir = await mkdtemp(path.join(tmpdir(), "steward-agents-"));
  for (const [folder, pkg] of Object.entries(PACKAGES)) {
    const dir = path.join(agentsDir, folder);
    await mkdir(dir);
    const envText = Object.entries(pkg.env)
      .map(([key, value]) => `${key}=${value}`)
      .join("\n");
    await writeFile(path.join(dir, ".env.discovery"), `${envText}\n`);
    if (pkg.schema) await writeFile(path.join(dir, "config.schema.json"), JSON.stringify(pkg.schema));
  }
});
afterAll(async () => {
  if (agentsDir) await rm(agentsDir, { recursive: true, force: true });
});

/** A Steward for one describe block, scanning the agents directory at start (no watcher). */
function useSteward(env: () => Record<string, string> = () => ({})) {
  const holder = {} as { t: TestSteward };
  beforeAll(async () => {
    holder.t = await startTestSteward("postgres", {
      STEWARD_AGENTS_DIR: agentsDir,
      STEWARD_AGENTS_WATCH: "false",
      ...env(),
    });
  });
  afterAll(async () => {
    await holder.t?.close();
  });
  /** Key undefined: the bootstrap admin of `default`; null: no credential. */
  type Key = string | null | undefined;
  const call = (method: "GET" | "POST" | "PUT" | "DELETE", url: string, payload?: object, key?: Key) =>
    holder.t.request({ method, url, key, ...(payload === undefined ? {} : { payload }) });
  return {
    get t() {
      return holder.t;
    },
    get: (url: string, key?: Key) => call("GET", url, undefined, key),
    post: (url: string, payload?: object, key?: Key) => call("POST", url, payload, key),
    put: (url: string, payload?: object, key?: Key) => call("PUT", url, payload, key),
    del: (url: string, key?: Key) => call("DELETE", url, undefined, key),
  };
}
type Api = ReturnType<typeof useSteward>;

const fieldsOf = (response: LightMyRequestResponse): string[] =>
  (response.json().error?.details?.errors ?? []).map((error: { field: string }) => error.field);

function definition(overrides: Record<string, unknown> = {}) {
  return {
    name: `hand-${randomBytes(4).toString("hex")}`,
    version: "1.0.0",
    description: "Registered by hand",
    subscribed_topics: ["jobs.>"],
    findings_topic: "findings.jobs",
    ...overrides,
  };
}

/** Registers an agent defined in the body; answers its id and token. */
async function registerByHand(api: Api, overrides: Record<string, unknown> = {}, key?: string) {
  const response = await api.post(AGENTS, definition(overrides), key);
  expect(response.statusCode, response.body).toBe(201);
  const body = response.json();
  return { id: body.agent.id as string, token: body.credentials.token as string, agent: body.agent };
}

/** The id of a discovered agent of the caller's organization, by name. */
async function discoveredId(api: Api, name: string, key?: string): Promise<string> {
  const response = await api.get(`${AGENTS}?name=${name}`, key);
  expect(response.statusCode, response.body).toBe(200);
  const [agent] = response.json().items;
  expect(agent?.state).toBe("discovered");
  return agent.id as string;
}

describe("discovery", () => {
  const api = useSteward();

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
      expect(report.directory).toBe(path.resolve(agentsDir));
      expect(report.directory_missing).toBe(false);
      expect(report.agents.map((agent: { name: string }) => agent.name).sort()).toEqual([
        "cost-watcher",
        "log-sentinel",
      ]);
      expect(report.problems).toHaveLength(3);
      const reasonOf = (folder: string) =>
        report.problems.find(
          (problem: { file: string }) =>
            problem.file === path.join(path.resolve(agentsDir), folder, ".env.discovery"),
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

describe("registration", () => {
  const api = useSteward();

  describe("happy path", () => {
    it("registers a discovered agent: 201, state registered, and a token that works for the agent itself", async () => {
      const id = await discoveredId(api, "log-sentinel");
      const response = await api.post(AGENTS, { agent_id: id });
      expect(response.statusCode, response.body).toBe(201);
      const { agent, credentials } = response.json();
      expect(agent).toMatchObject({ id, state: "registered", name: "log-sentinel" });
      expect(credentials.nats).toBeNull();
      expect(Date.parse(credentials.token_expires_at)).toBeGreaterThan(Date.now());
      const token = credentials.token as string;

      const own = await api.get(`${AGENTS}/${id}`, token);
      expect(own.statusCode, own.body).toBe(200);
      expect(own.json().id).toBe(id);
      const config = await api.put(`${AGENTS}/${id}/config`, { threshold: 12 }, token);
      expect(config.statusCode, config.body).toBe(200);
      expect(config.json()).toMatchObject({
        version: 1,
        config: { threshold: 12 },
        sources: { threshold: "stored" },
      });
      const beat = await api.post(
        `${AGENTS}/${id}/heartbeat`,
        { agent_id: id, status: "ok", timestamp: new Date().toISOString(), uptime: 3 },
        token,
      );
      expect(beat.statusCode, beat.body).toBe(202);
      expect((await api.get(`${AGENTS}/${id}`)).json().state).toBe("running");
    });

    it("registers an agent defined by hand, with an id {type}-{uuid}", async () => {
      const typed = await registerByHand(api, { type: "worker", tags: ["batch"] });
      expect(typed.id).toMatch(ID_PATTERN);
      expect(typed.id).toMatch(/^worker-/);
      expect(typed.agent).toMatchObject({
        state: "registered",
        organization_id: "default",
        type: "worker",
        tags: ["batch"],
        subscribed_topics: ["jobs.>"],
        findings_topic: "findings.jobs",
        managed_process: false,
      });
      const plain = await registerByHand(api);
      expect(plain.id).toMatch(ID_PATTERN);
      expect(plain.id).toMatch(/^agent-/);
      expect((await api.get(`${AGENTS}/${plain.id}`)).statusCode).toBe(200);
    });
  });

  describe("errors", () => {
    it("refuses a definition with a bad version or subject, naming the field (400)", async () => {
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ version: "1.2" }, "version"],
        [{ version: "v1.0.0" }, "version"],
        [{ subscribed_topics: ["jobs..x"] }, "subscribed_topics[0]"],
        [{ subscribed_topics: ["ok.topic", "bad topic"] }, "subscribed_topics[1]"],
        [{ findings_topic: "findings.>" }, "findings_topic"],
        [{ name: "Not A Slug" }, "name"],
      ];
      for (const [overrides, field] of cases) {
        const body = definition(overrides);
        const response = await api.post(AGENTS, body);
        expect(response.statusCode, JSON.stringify(overrides)).toBe(400);
        expect(response.json().error.code).toBe("VALIDATION_ERROR");
        expect(fieldsOf(response)).toContain(field);
        expect((await api.get(`${AGENTS}?name=${encodeURIComponent(body.name)}`)).json().total).toBe(0);
      }
      const missing = await api.post(AGENTS, { name: "no-topics", version: "1.0.0", description: "x" });
      expect(missing.statusCode).toBe(400);
      expect(fieldsOf(missing)).toEqual(expect.arrayContaining(["subscribed_topics", "findings_topic"]));
    });

    it("refuses a config_schema that does not describe an object, as for a package", async () => {
      for (const schema of [{ type: "string" }, { type: "object", properties: [] }, { type: "nonsense" }]) {
        const body = definition({ config_schema: schema });
        const response = await api.post(AGENTS, body);
        expect(response.statusCode, JSON.stringify(schema)).toBe(400);
        expect(fieldsOf(response)).toContain("config_schema");
        expect((await api.get(`${AGENTS}?name=${body.name}`)).json().total).toBe(0);
      }
    });

    it("refuses a second agent of the same name and version (409), also one discovered", async () => {
      const first = await registerByHand(api);
      const again = await api.post(AGENTS, definition({ name: first.agent.name }));
      expect(again.statusCode, again.body).toBe(409);
      expect(again.json().error.code).toBe("CONFLICT");
      const otherVersion = await api.post(AGENTS, definition({ name: first.agent.name, version: "1.0.1" }));
      expect(otherVersion.statusCode).toBe(201);
      const discovered = await api.post(AGENTS, definition({ name: "cost-watcher", version: "0.3.1" }));
      expect(discovered.statusCode).toBe(409);
    });

    it("registers a discovered agent once (409 after), 404 for an unknown id, 400 with extra fields", async () => {
      const id = await discoveredId(api, "cost-watcher");
      expect((await api.post(AGENTS, { agent_id: id })).statusCode).toBe(201);
      const twice = await api.post(AGENTS, { agent_id: id });
      expect(twice.statusCode).toBe(409);
      expect(twice.json().error.details.allowed).toEqual(["running", "deleted"]);
      expect(
        (await api.post(AGENTS, { agent_id: "agent-00000000-0000-0000-0000-000000000000" })).statusCode,
      ).toBe(404);
      const mixed = await api.post(AGENTS, { agent_id: id, version: "9.9.9" });
      expect(mixed.statusCode).toBe(400);
      expect(fieldsOf(mixed)).toContain("version");
    });
  });

  describe("security", () => {
    it("an agent's token reaches only the agent itself", async () => {
      const self = await registerByHand(api);
      const peer = await registerByHand(api);
      const token = self.token;

      expect((await api.get(`${AGENTS}/${peer.id}`, token)).statusCode).toBe(404);
      expect((await api.put(`${AGENTS}/${peer.id}/config`, { a: 1 }, token)).statusCode).toBe(404);
      expect((await api.post(`${AGENTS}/${peer.id}/heartbeat`, { status: "ok" }, token)).statusCode).toBe(
        404,
      );
      expect((await api.put(`${AGENTS}/${peer.id}/status`, { status: "running" }, token)).statusCode).toBe(
        404,
      );
      expect((await api.get(AGENTS, token)).statusCode).toBe(403);
      expect((await api.get("/api/v1/external-agents", token)).statusCode).toBe(403);
      expect((await api.post(AGENTS, definition(), token)).statusCode).toBe(403);
      expect((await api.post(`${AGENTS}/discover`, undefined, token)).statusCode).toBe(403);
      expect((await api.get(`${AGENTS}/alerts`, token)).statusCode).toBe(403);
      const revoke = await api.del(`${AGENTS}/${self.id}/token`, token);
      expect(revoke.statusCode).toBe(403);
      expect(revoke.json().error.code).toBe("FORBIDDEN");
      // Refused calls changed nothing: the peer is as it was, the own token still works.
      const peerNow = (await api.get(`${AGENTS}/${peer.id}`)).json();
      expect(peerNow).toMatchObject({ state: "registered", config_version: 0, last_heartbeat_at: null });
      expect((await api.get(`${AGENTS}/${self.id}`, token)).statusCode).toBe(200);
    });

    it("registration needs agents:manage and a key", async () => {
      for (const role of ["viewer", "auditor", "developer"]) {
        const key = await createKey(api.t, role);
        expect((await api.post(AGENTS, definition(), key)).statusCode, role).toBe(403);
      }
      expect((await api.post(AGENTS, definition(), null)).statusCode).toBe(401);
      expect((await api.post(AGENTS, definition(), "sk_live_not-a-real-key")).statusCode).toBe(401);
    });
  });
});

describe("discovery tokens", () => {
  const api = useSteward();
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

describe("agent tokens", () => {
  const api = useSteward();

  it("the agent refreshes its token and the new one works", async () => {
    const agent = await registerByHand(api);
    const refreshed = await api.post(`${AGENTS}/${agent.id}/token`, undefined, agent.token);
    expect(refreshed.statusCode, refreshed.body).toBe(200);
    const { token, expires_at } = refreshed.json();
    expect(Date.parse(expires_at)).toBeGreaterThan(Date.now());
    expect((await api.get(`${AGENTS}/${agent.id}`, token)).statusCode).toBe(200);
    expect((await api.post(`${AGENTS}/${agent.id}/heartbeat`, { status: "ok" }, token)).statusCode).toBe(202);
  });

  it("after an admin revokes, every token issued before answers 401; a fresh one works", async () => {
    const agent = await registerByHand(api);
    const refreshed = (await api.post(`${AGENTS}/${agent.id}/token`, undefined, agent.token)).json().token;
    const revoke = await api.del(`${AGENTS}/${agent.id}/token`);
    expect(revoke.statusCode, revoke.body).toBe(204);
    for (const token of [agent.token, refreshed]) {
      const response = await api.get(`${AGENTS}/${agent.id}`, token);
      expect(response.statusCode).toBe(401);
      expect(response.json().error.code).toBe("UNAUTHORIZED");
      expect((await api.post(`${AGENTS}/${agent.id}/token`, undefined, token)).statusCode).toBe(401);
    }
    const reissued = await api.post(`${AGENTS}/${agent.id}/token`);
    expect(reissued.statusCode).toBe(200);
    expect((await api.get(`${AGENTS}/${agent.id}`, reissued.json().token)).statusCode).toBe(200);
  });

  it("a deleted agent's token answers 401", async () => {
    const agent = await registerByHand(api);
    expect((await api.del(`${AGENTS}/${agent.id}`)).statusCode).toBe(204);
    expect((await api.get(`${AGENTS}/${agent.id}`, agent.token)).statusCode).toBe(401);
  });

  it("an agent cannot refresh or revoke another agent's token", async () => {
    const self = await registerByHand(api);
    const peer = await registerByHand(api);
    expect((await api.post(`${AGENTS}/${peer.id}/token`, undefined, self.token)).statusCode).toBe(404);
    expect((await api.del(`${AGENTS}/${peer.id}/token`, self.token)).statusCode).toBe(403);
    expect((await api.get(`${AGENTS}/${peer.id}`, peer.token)).statusCode).toBe(200);
  });

  it("a tampered agent token answers 401", async () => {
    const agent = await registerByHand(api);
    const [header, payload, signature] = agent.token.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
    const forged = Buffer.from(JSON.stringify({ ...claims, gen: claims.gen + 1 })).toString("base64url");
    expect((await api.get(`${AGENTS}/${agent.id}`, `${header}.${forged}.${signature}`)).statusCode).toBe(401);
  });
});

describe("lifecycle states", () => {
  const api = useSteward();
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
  const api = useSteward(() => ({
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

describe("telemetry", () => {
  const api = useSteward();
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

describe("missed heartbeats", () => {
  const api = useSteward(() => ({
    STEWARD_HEARTBEAT_SWEEP_MS: "100",
    STEWARD_HEARTBEAT_UNHEALTHY_AFTER: "1",
    STEWARD_HEARTBEAT_FAILED_AFTER: "2",
  }));

  it("an agent whose beats stop is failed with an alert; its next beat brings it back and resolves the alert", async () => {
    const agent = await registerByHand(api, { heartbeat_interval_s: 1 });
    const beat = () => api.post(`${AGENTS}/${agent.id}/heartbeat`, { status: "ok", uptime: 1 }, agent.token);
    expect((await beat()).statusCode).toBe(202);
    const state = async () => (await api.get(`${AGENTS}/${agent.id}`)).json().state as string;
    await until(async () => (await state()) === "failed");
    expect(await state()).toBe("failed");
    const health = (await api.get(`${AGENTS}/${agent.id}/health`)).json();
    expect(health).toMatchObject({ state: "failed", health: "unhealthy" });
    expect(health.open_alerts).toHaveLength(1);
    expect(health.open_alerts[0]).toMatchObject({ kind: "missed_heartbeats", rule_id: null });
    const failedBy = (await api.get(`${AGENTS}/${agent.id}/status/history`)).json().items.at(-1);
    expect(failedBy).toMatchObject({ from: "running", to: "failed", actor: { type: "system" } });
    expect(failedBy.reason).toMatch(/missed \d+ heartbeats/);

    expect((await beat()).statusCode).toBe(202);
    const back = (await api.get(`${AGENTS}/${agent.id}/health`)).json();
    expect(back).toMatchObject({ state: "running", health: "healthy", open_alerts: [] });
    const resumed = (await api.get(`${AGENTS}/${agent.id}/status/history`)).json().items.at(-1);
    expect(resumed).toMatchObject({ from: "failed", to: "running", reason: "heartbeat resumed" });
    // Stopped on purpose, it is not failed for its silence.
    expect((await api.put(`${AGENTS}/${agent.id}/status`, { status: "stopped" })).statusCode).toBe(200);
  });
});

describe("access control", () => {
  const api = useSteward();

  it("viewer, auditor and developer read but cannot change", async () => {
    const agent = await registerByHand(api);
    for (const role of ["viewer", "auditor", "developer"]) {
      const key = await createKey(api.t, role);
      for (const url of [
        AGENTS,
        `${AGENTS}/${agent.id}`,
        `${AGENTS}/${agent.id}/config`,
        `${AGENTS}/${agent.id}/status/history`,
        `${AGENTS}/${agent.id}/health`,
        `${AGENTS}/alerts`,
        `${AGENTS}/alert-rules`,
      ])
        expect((await api.get(url, key)).statusCode, `${role} GET ${url}`).toBe(200);
      const writes = [
        await api.put(`${AGENTS}/${agent.id}/config`, { a: 1 }, key),
        await api.put(`${AGENTS}/${agent.id}/config/overrides`, { a: 1 }, key),
        await api.put(`${AGENTS}/${agent.id}/status`, { status: "running" }, key),
        await api.post(AGENTS, definition(), key),
        await api.del(`${AGENTS}/${agent.id}`, key),
        await api.post(`${AGENTS}/${agent.id}/token`, undefined, key),
        await api.del(`${AGENTS}/${agent.id}/token`, key),
        await api.post(`${AGENTS}/${agent.id}/heartbeat`, { status: "ok" }, key),
        await api.post(`${AGENTS}/alert-rules`, { name: "r", kind: "missed_heartbeats", threshold: 3 }, key),
      ];
      for (const response of writes) expect(response.statusCode, `${role}: ${response.body}`).toBe(403);
    }
    const after = (await api.get(`${AGENTS}/${agent.id}`)).json();
    expect(after).toMatchObject({ state: "registered", config_version: 0 });
    expect((await api.get(`${AGENTS}/${agent.id}`, agent.token)).statusCode).toBe(200);
  });

  it("an organization's admin cannot see or touch another organization's agents (404, nothing changes)", async () => {
    const a = await createOrgWithKey(api.t, "admin");
    const b = await createOrgWithKey(api.t, "admin");
    const theirs = await registerByHand(api, {}, b.key);
    const ownScan = await api.post(`${AGENTS}/discover`, undefined, b.key);
    expect(ownScan.statusCode).toBe(200);
    const theirDiscovered = ownScan.json().agents[0].id as string;
    const id = theirs.id;
    const attempts = [
      await api.get(`${AGENTS}/${id}`, a.key),
      await api.get(`${AGENTS}/${id}/config`, a.key),
      await api.get(`${AGENTS}/${id}/config/history`, a.key),
      await api.get(`${AGENTS}/${id}/status/history`, a.key),
      await api.get(`${AGENTS}/${id}/health`, a.key),
      await api.get(`${AGENTS}/${id}/logs`, a.key),
      await api.get(`${AGENTS}/${id}/metrics`, a.key),
      await api.get(`${AGENTS}/${id}/process`, a.key),
      await api.put(`${AGENTS}/${id}/config`, { a: 1 }, a.key),
      await api.put(`${AGENTS}/${id}/config/overrides`, { a: 1 }, a.key),
      await api.put(`${AGENTS}/${id}/status`, { status: "running" }, a.key),
      await api.post(`${AGENTS}/${id}/heartbeat`, { status: "ok" }, a.key),
      await api.post(`${AGENTS}/${id}/metrics`, { errors: 1 }, a.key),
      await api.post(`${AGENTS}/${id}/logs`, { entries: [{ level: "info", message: "x" }] }, a.key),
      await api.post(`${AGENTS}/${id}/token`, undefined, a.key),
      await api.del(`${AGENTS}/${id}/token`, a.key),
      await api.post(`${AGENTS}/${id}/stop`, undefined, a.key),
      await api.del(`${AGENTS}/${id}`, a.key),
      await api.post(AGENTS, { agent_id: theirDiscovered }, a.key),
    ];
    for (const response of attempts) {
      expect(response.statusCode, response.body).toBe(404);
      expect(response.json().error.code).toBe("NOT_FOUND");
    }
    const rule = await api.post(
      `${AGENTS}/alert-rules`,
      { name: "theirs", kind: "missed_heartbeats", threshold: 1, agent_id: id },
      a.key,
    );
    expect(rule.statusCode).toBe(400);
    expect(fieldsOf(rule)).toContain("agent_id");
    expect((await api.get(AGENTS, a.key)).json().total).toBe(0);

    // Seen from B: nothing changed.
    const agent = (await api.get(`${AGENTS}/${id}`, b.key)).json();
    expect(agent).toMatchObject({ state: "registered", config_version: 0, last_heartbeat_at: null });
    expect((await api.get(`${AGENTS}/${id}/config`, b.key)).json().config).toEqual({});
    expect((await api.get(`${AGENTS}/${id}/status/history`, b.key)).json().total).toBe(1);
    expect((await api.get(`${AGENTS}/${id}/logs`, b.key)).json().total).toBe(0);
    expect((await api.get(`${AGENTS}/${id}/health`, b.key)).json().metrics).toEqual({});
    expect((await api.get(`${AGENTS}/${theirDiscovered}`, b.key)).json().state).toBe("discovered");
    expect((await api.get(`${AGENTS}/${id}`, theirs.token)).statusCode).toBe(200);
  });

  it("an agent of one organization cannot reach agents of another", async () => {
    const b = await createOrgWithKey(api.t, "admin");
    const theirs = await registerByHand(api, {}, b.key);
    const mine = await registerByHand(api);
    expect((await api.get(`${AGENTS}/${theirs.id}`, mine.token)).statusCode).toBe(404);
    expect(
      (await api.post(`${AGENTS}/${theirs.id}/heartbeat`, { status: "ok" }, mine.token)).statusCode,
    ).toBe(404);
    expect((await api.get(`${AGENTS}/${theirs.id}`, b.key)).json().last_heartbeat_at).toBeNull();
  });
});

describe("alerts", () => {
  let channel: MockAgent;
  const api = useSteward(() => invokeEnv({ STEWARD_DELIVERY_RETRY_DELAYS: "100ms" }));
  beforeAll(async () => {
    channel = await startMockAgent(() => ({ status: 200, body: {} }));
  });
  afterAll(async () => {
    await channel?.close();
  });
  const alerts = async (query: string) => {
    const response = await api.get(`${AGENTS}/alerts?${query}`);
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };

  describe("happy path", () => {
    it("a metric above a rule's threshold opens an alert; a value below resolves it", async () => {
      const agent = await registerByHand(api);
      const created = await api.post(`${AGENTS}/alert-rules`, {
        name: "too many errors",
        kind: "metric_threshold",
        metric: "errors",
        threshold: 5,
        agent_id: agent.id,
      });
      expect(created.statusCode, created.body).toBe(201);
      const rule = created.json();
      expect(rule).toMatchObject({
        name: "too many errors",
        kind: "metric_threshold",
        metric: "errors",
        threshold: 5,
        enabled: true,
      });
      expect(
        (await api.get(`${AGENTS}/alert-rules`)).json().items.map((r: { id: string }) => r.id),
      ).toContain(rule.id);

      expect((await api.post(`${AGENTS}/${agent.id}/metrics`, { errors: 9 }, agent.token)).statusCode).toBe(
        202,
      );
      let open: { items: Array<Record<string, unknown>> } = { items: [] };
      await until(async () => {
        open = await alerts(`open=true&agent_id=${agent.id}`);
        return open.items.length > 0;
      });
      expect(open.items).toHaveLength(1);
      const [alert] = open.items;
      expect(alert).toMatchObject({
        agent_id: agent.id,
        rule_id: rule.id,
        kind: "metric_threshold",
        resolved_at: null,
        details: { metric: "errors", value: 9, threshold: 5 },
      });
      // Still above: the same alert stays open, no second one.
      await api.post(`${AGENTS}/${agent.id}/metrics`, { errors: 12 }, agent.token);
      expect((await alerts(`agent_id=${agent.id}`)).total).toBe(1);
      const health = (await api.get(`${AGENTS}/${agent.id}/health`)).json();
      expect(health.open_alerts.map((item: { id: string }) => item.id)).toEqual([alert?.id]);

      expect((await api.post(`${AGENTS}/${agent.id}/metrics`, { errors: 1 }, agent.token)).statusCode).toBe(
        202,
      );
      await until(async () => (await alerts(`open=true&agent_id=${agent.id}`)).items.length === 0);
      expect((await alerts(`open=true&agent_id=${agent.id}`)).items).toEqual([]);
      const resolved = (await alerts(`open=false&agent_id=${agent.id}`)).items;
      expect(resolved.map((item: { id: string }) => item.id)).toEqual([alert?.id]);
      expect(resolved[0].resolved_at).not.toBeNull();
    });

    it("announces an alert on the external agent a rule names", async () => {
      const channelId = await registerAgent(api.t, channel.url, {
        platform_config: { webhook_url: channel.url },
      });
      const agent = await registerByHand(api);
      const created = await api.post(`${AGENTS}/alert-rules`, {
        name: "queue backlog",
        kind: "metric_threshold",
        metric: "queue_depth",
        threshold: 100,
        agent_id: agent.id,
        notify_external_agent_id: channelId,
      });
      expect(created.statusCode, created.body).toBe(201);
      expect(created.json().notify_external_agent_id).toBe(channelId);

      const report = { custom: { queue_depth: 250 } };
      expect((await api.post(`${AGENTS}/${agent.id}/metrics`, report, agent.token)).statusCode).toBe(202);
      await until(() => channel.requests.length > 0);
      expect(channel.requests).toHaveLength(1);
      const [alert] = (await alerts(`open=true&agent_id=${agent.id}`)).items;
      expect(alert).toBeDefined();
      const body = channel.requests[0]?.rawBody ?? "";
      expect(body).toContain(alert.id);
      expect(body).toContain(agent.agent.name);
      expect(body).toContain("queue_depth");
    });
    it("an error-rate rule fires above the share of errors in its window and clears below", async () => {
      const agent = await registerByHand(api);
      const created = await api.post(`${AGENTS}/alert-rules`, {
        name: "error rate",
        kind: "error_rate",
        threshold: 0.5,
        window_s: 60,
        agent_id: agent.id,
      });
      expect(created.statusCode, created.body).toBe(201);
      const report = (body: object) => api.post(`${AGENTS}/${agent.id}/metrics`, body, agent.token);
      expect((await report({ events_processed: 10, errors: 8 })).statusCode).toBe(202);
      const [open] = (await alerts(`open=true&agent_id=${agent.id}`)).items;
      expect(open).toMatchObject({ kind: "error_rate", rule_id: created.json().id });
      expect((await report({ events_processed: 100, errors: 0 })).statusCode).toBe(202);
      expect((await alerts(`open=true&agent_id=${agent.id}`)).total).toBe(0);
    });

    it("deleting a rule resolves the alerts it left open (nothing else could close them)", async () => {
      const agent = await registerByHand(api);
      const rules: string[] = [];
      for (const metric of ["memory", "cpu"]) {
        const created = await api.post(`${AGENTS}/alert-rules`, {
          name: `doomed ${metric} rule`,
          kind: "metric_threshold",
          metric,
          threshold: 100,
          agent_id: agent.id,
        });
        expect(created.statusCode, created.body).toBe(201);
        rules.push(created.json().id);
      }
      await api.post(`${AGENTS}/${agent.id}/metrics`, { memory: 500, cpu: 200 }, agent.token);
      const open = (await alerts(`open=true&agent_id=${agent.id}`)).items;
      expect(open.map((alert: { rule_id: string }) => alert.rule_id).sort()).toEqual([...rules].sort());
      // Both rules' alerts are of one kind: deleting the second must not clash with the first.
      for (const rule of rules) {
        const deleted = await api.del(`${AGENTS}/alert-rules/${rule}`);
        expect(deleted.statusCode, deleted.body).toBe(204);
      }
      expect((await alerts(`open=true&agent_id=${agent.id}`)).total).toBe(0);
      const kept = (await alerts(`agent_id=${agent.id}`)).items;
      expect(kept.map((alert: { id: string }) => alert.id).sort()).toEqual(
        open.map((alert: { id: string }) => alert.id).sort(),
      );
      for (const alert of kept) {
        expect(alert.rule_id).toBeNull();
        expect(alert.resolved_at).not.toBeNull();
      }
      expect((await api.get(`${AGENTS}/${agent.id}/health`)).json().open_alerts).toEqual([]);
    });
  });

  describe("errors", () => {
    it("refuses incomplete or clashing rules", async () => {
      const noMetric = await api.post(`${AGENTS}/alert-rules`, {
        name: "no metric",
        kind: "metric_threshold",
        threshold: 5,
      });
      expect(noMetric.statusCode).toBe(400);
      expect(fieldsOf(noMetric)).toContain("metric");
      const badKind = await api.post(`${AGENTS}/alert-rules`, {
        name: "bad kind",
        kind: "vibes",
        threshold: 5,
      });
      expect(badKind.statusCode).toBe(400);
      expect(fieldsOf(badKind)).toContain("kind");
      const unknownChannel = await api.post(`${AGENTS}/alert-rules`, {
        name: "nowhere",
        kind: "missed_heartbeats",
        threshold: 3,
        notify_external_agent_id: "agt_00000000000000000000000000",
      });
      expect(unknownChannel.statusCode).toBe(400);
      expect(fieldsOf(unknownChannel)).toContain("notify_external_agent_id");
      const body = { name: "twice", kind: "missed_heartbeats", threshold: 3 };
      expect((await api.post(`${AGENTS}/alert-rules`, body)).statusCode).toBe(201);
      const again = await api.post(`${AGENTS}/alert-rules`, body);
      expect(again.statusCode).toBe(409);
    });
  });

  describe("security", () => {
    it("rules cannot notify another organization's external agent; readers and agents cannot manage rules", async () => {
      const other = await createOrgWithKey(api.t, "admin");
      const foreign = await registerAgent(api.t, channel.url, {}, other.key);
      const response = await api.post(`${AGENTS}/alert-rules`, {
        name: "foreign channel",
        kind: "missed_heartbeats",
        threshold: 3,
        notify_external_agent_id: foreign,
      });
      expect(response.statusCode).toBe(400);
      expect(fieldsOf(response)).toContain("notify_external_agent_id");

      const agent = await registerByHand(api);
      const viewer = await createKey(api.t, "viewer");
      const rule = { name: "not yours", kind: "missed_heartbeats", threshold: 3 };
      expect((await api.post(`${AGENTS}/alert-rules`, rule, viewer)).statusCode).toBe(403);
      expect((await api.post(`${AGENTS}/alert-rules`, rule, agent.token)).statusCode).toBe(403);
      expect((await api.get(`${AGENTS}/alert-rules`, agent.token)).statusCode).toBe(403);
      // Another organization sees none of this organization's rules or alerts.
      expect((await api.get(`${AGENTS}/alert-rules`, other.key)).json().total).toBe(0);
      expect((await api.get(`${AGENTS}/alerts`, other.key)).json().total).toBe(0);
    });
  });
});

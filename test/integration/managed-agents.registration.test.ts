import { describe, expect, it } from "vitest";
import {
  AGENTS,
  definition,
  discoveredId,
  fieldsOf,
  ID_PATTERN,
  registerByHand,
  useAgentsDir,
} from "../helpers/managed-agents.js";
import { createKey, createOrgWithKey } from "../helpers/steward.js";

/**
 * Managed agents through the API: registration of discovered and hand-defined agents, agent
 * tokens, and access control across roles and organizations.
 * On PostgreSQL; each group runs its own Steward over this file's agents directory, so each
 * starts from the same start-time scan.
 */

const agentsDir = useAgentsDir();

describe("registration", () => {
  const api = agentsDir.useSteward();

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

describe("agent tokens", () => {
  const api = agentsDir.useSteward();

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

describe("access control", () => {
  const api = agentsDir.useSteward();

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

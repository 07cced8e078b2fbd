import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAccount } from "@nats-io/nkeys";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { runAgentsCommand } from "../../src/lifecycle/agents-cli.js";
import { until } from "../helpers/eventually.js";
import { TEST_NATS_URL } from "../helpers/services.js";
import { createOrgWithKey, startTestSteward, type TestSteward } from "../helpers/steward.js";

/** A package that runs a process doing nothing until it is stopped. */
async function writeSleeper(dir: string, name: string): Promise<void> {
  await mkdir(join(dir, name));
  await writeFile(
    join(dir, name, ".env.discovery"),
    [
      `AGENT_NAME=${name}`,
      "AGENT_VERSION=0.1.0",
      "AGENT_DESCRIPTION=sleeps",
      "DEFAULT_SUBSCRIBED_TOPICS=work.>",
      "DEFAULT_FINDINGS_TOPIC=findings.work",
      `AGENT_COMMAND=node -e "setInterval(() => {}, 1000)"`,
    ].join("\n"),
  );
}

/**
 * How agents and operators reach Steward besides the plain API: NATS credentials at
 * registration, the config long-poll, the directory watcher and the `steward agents` CLI.
 */
describe("managed agent channels", () => {
  let t: TestSteward;
  let agentsDir: string;
  let baseUrl: string;

  beforeAll(async () => {
    agentsDir = await mkdtemp(join(tmpdir(), "steward-agents-"));
    await writeSleeper(agentsDir, "sleeper");
    t = await startTestSteward("postgres", {
      STEWARD_AGENTS_DIR: agentsDir,
      NATS_URL: TEST_NATS_URL,
      STEWARD_NATS_ACCOUNT_SEED: new TextDecoder().decode(createAccount().getSeed()),
      STEWARD_AGENTS_STOP_GRACE_MS: "1000",
      STEWARD_AGENT_ENV_READER_API_URL: "https://internal.example/api",
    });
    baseUrl = await t.steward.server.listen({ host: "127.0.0.1", port: 0 });
  });
  afterAll(async () => {
    await t?.close();
    await rm(agentsDir, { recursive: true, force: true });
  });

  const register = async (name: string, topics: { subscribed?: string[]; findings?: string } = {}) =>
    t.request({
      method: "POST",
      url: "/api/v1/agents",
      payload: {
        name,
        version: "1.0.0",
        description: "worker",
        subscribed_topics: topics.subscribed ?? ["jobs.>"],
        findings_topic: topics.findings ?? "findings.jobs",
      },
    });

  it("hands a registered agent NATS credentials scoped to its own subjects", async () => {
    const response = await register("nats-worker");
    expect(response.statusCode).toBe(201);
    const { agent, credentials } = response.json();
    expect(credentials.nats.creds).toContain("-----BEGIN NATS USER JWT-----");
    expect(credentials.nats.creds).toContain("-----BEGIN USER NKEY SEED-----");
    expect(credentials.nats.public_key).toMatch(/^U[A-Z0-9]{55}$/);
    expect(credentials.nats.permissions).toEqual({
      publish: [
        `agents.${agent.id}.heartbeat`,
        `agents.${agent.id}.metrics`,
        `agents.${agent.id}.logs`,
        "findings.jobs",
      ],
      subscribe: [`agents.${agent.id}.control`, "jobs.>", "_INBOX.>"],
    });
    const renewed = await t.request({
      method: "POST",
      url: `/api/v1/agents/${agent.id}/token`,
      key: credentials.token,
    });
    expect(renewed.statusCode).toBe(200);
    expect(renewed.json().nats.public_key).toMatch(/^U/);
    expect(renewed.json().nats.public_key).not.toBe(credentials.nats.public_key);
    // Shown once: reading the agent again never returns them.
    expect((await t.request({ method: "GET", url: `/api/v1/agents/${agent.id}` })).body).not.toContain(
      "NKEY",
    );
  });

  it("refuses topics that would reach other agents' subjects or NATS's own", async () => {
    const response = await register("overreach", {
      subscribed: ["agents.*.control"],
      findings: "$JS.API.STREAM.DELETE.X",
    });
    expect(response.statusCode).toBe(400);
    const fields = response.json().error.details.errors.map((error: { field: string }) => error.field);
    expect(fields).toEqual(["subscribed_topics[0]", "findings_topic"]);
  });

  it("applies the operator's STEWARD_AGENT_<NAME>_<KEY> variables to the operator's organization only", async () => {
    const own = (await register("env-reader")).json().agent.id;
    const ownConfig = (await t.request({ method: "GET", url: `/api/v1/agents/${own}/config` })).json();
    expect(ownConfig).toMatchObject({
      config: { api_url: "https://internal.example/api" },
      sources: { api_url: "environment" },
    });

    const tenant = await createOrgWithKey(t, "admin");
    const theirs = await t.request({
      method: "POST",
      url: "/api/v1/agents",
      key: tenant.key,
      payload: {
        name: "env-reader",
        version: "1.0.0",
        description: "d",
        subscribed_topics: ["a.b"],
        findings_topic: "f.g",
      },
    });
    expect(theirs.statusCode).toBe(201);
    const theirConfig = await t.request({
      method: "GET",
      url: `/api/v1/agents/${theirs.json().agent.id}/config`,
      key: tenant.key,
    });
    expect(theirConfig.json()).toMatchObject({ config: {}, sources: {} });
  });

  it("refuses to register a discovered package whose topics reach other agents, and keeps the token", async () => {
    await mkdir(join(agentsDir, "snooper"));
    await writeFile(
      join(agentsDir, "snooper", ".env.discovery"),
      [
        "AGENT_NAME=snooper",
        "AGENT_VERSION=0.1.0",
        "AGENT_DESCRIPTION=listens where it should not",
        "DEFAULT_SUBSCRIBED_TOPICS=agents.*.control",
        "DEFAULT_FINDINGS_TOPIC=findings.snoop",
      ].join("\n"),
    );
    await t.request({ method: "POST", url: "/api/v1/agents/discover" });
    const token = (
      await t.request({ method: "POST", url: "/api/v1/agents/discovery-tokens", payload: {} })
    ).json();
    const definition = {
      discovery_token: token.token,
      name: "snooper",
      version: "0.1.0",
      description: "listens where it should not",
      subscribed_topics: ["jobs.>"],
      findings_topic: "findings.snoop",
    };
    const refused = await t.request({
      method: "POST",
      url: "/api/v1/agents/register",
      key: null,
      payload: definition,
    });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.details.errors[0].field).toBe("subscribed_topics[0]");
    const again = await t.request({
      method: "POST",
      url: "/api/v1/agents/register",
      key: null,
      payload: { ...definition, name: "honest" },
    });
    expect(again.statusCode).toBe(201);
  });

  it("answers a config long-poll as soon as a newer version is stored, and 204 when the wait runs out", async () => {
    const { agent, credentials } = (await register("poller")).json();
    const poll = (after: number, wait: number) =>
      fetch(`${baseUrl}/api/v1/agents/${agent.id}/control?after=${after}&wait_s=${wait}`, {
        headers: { authorization: `Bearer ${credentials.token}` },
      });
    const waiting = poll(0, 20);
    const put = await t.request({
      method: "PUT",
      url: `/api/v1/agents/${agent.id}/config`,
      payload: { level: 3 },
    });
    expect(put.statusCode).toBe(200);
    const answer = await waiting;
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ type: "config", version: 1, config: { level: 3 } });

    const idle = await poll(1, 1);
    expect(idle.status).toBe(204);
  });

  it("pushes config changes, versions and overrides, to an agent's control WebSocket, and to no other agent", async () => {
    const { agent, credentials } = (await register("ws-listener")).json();
    const other = (await register("ws-intruder")).json();
    const url = `${baseUrl.replace("http", "ws")}/api/v1/agents/${agent.id}/control/ws?after=0`;
    const refused = new WebSocket(url, { headers: { authorization: `Bearer ${other.credentials.token}` } });
    const refusedStatus = await new Promise<number>((resolve) => {
      refused.on("unexpected-response", (_request, response) => resolve(response.statusCode ?? 0));
      refused.on("open", () => resolve(101));
    });
    expect(refusedStatus).toBe(404);

    const messages: unknown[] = [];
    const socket = new WebSocket(url, { headers: { authorization: `Bearer ${credentials.token}` } });
    socket.on("message", (data) => messages.push(JSON.parse(String(data))));
    await new Promise((resolve) => socket.once("open", resolve));
    await t.request({ method: "PUT", url: `/api/v1/agents/${agent.id}/config`, payload: { level: 1 } });
    await until(() => messages.length === 1);
    await t.request({
      method: "PUT",
      url: `/api/v1/agents/${agent.id}/config/overrides`,
      payload: { level: 9 },
    });
    await until(() => messages.length === 2);
    socket.close();
    expect(messages).toEqual([
      { type: "config", version: 1, config: { level: 1 } },
      { type: "config", version: 1, config: { level: 9 } },
    ]);
  });

  it("closes sockets with 4401 once their credential is revoked; the control socket sends no config after", async () => {
    const { agent, credentials } = (await register("ws-revoked")).json();
    const viewer = await t.request({
      method: "POST",
      url: "/api/v1/api-keys",
      payload: { name: "dashboard viewer", role: "viewer" },
    });
    const ws = baseUrl.replace("http", "ws");
    const open = async (path: string, token: string) => {
      const socket = new WebSocket(`${ws}${path}`, { headers: { authorization: `Bearer ${token}` } });
      const seen = { messages: [] as unknown[], closedWith: undefined as number | undefined };
      socket.on("message", (data) => seen.messages.push(JSON.parse(String(data))));
      socket.on("close", (code) => {
        seen.closedWith = code;
      });
      await new Promise((resolve) => socket.once("open", resolve));
      return seen;
    };
    const control = await open(`/api/v1/agents/${agent.id}/control/ws?after=0`, credentials.token);
    const events = await open("/api/v1/agents/ws", viewer.json().key);
    await until(() => events.messages.length === 1);

    expect((await t.request({ method: "DELETE", url: `/api/v1/agents/${agent.id}/token` })).statusCode).toBe(
      204,
    );
    expect(
      (await t.request({ method: "DELETE", url: `/api/v1/api-keys/${viewer.json().id}` })).statusCode,
    ).toBe(204);
    await t.request({
      method: "PUT",
      url: `/api/v1/agents/${agent.id}/config`,
      payload: { secret_level: 7 },
    });
    await until(() => control.closedWith !== undefined && events.closedWith !== undefined, 15_000);
    expect([control.closedWith, events.closedWith]).toEqual([4401, 4401]);
    // Its credential is checked before every config, which can hold secrets.
    expect(control.messages).toEqual([]);
  });

  it("discovers a package dropped into the watched directory while running", async () => {
    await writeSleeper(agentsDir, "latecomer");
    await until(async () => {
      const found = (await t.request({ method: "GET", url: "/api/v1/agents?name=latecomer" })).json();
      return found.items.length === 1;
    });
    const found = (await t.request({ method: "GET", url: "/api/v1/agents?name=latecomer" })).json();
    expect(found.items).toEqual([expect.objectContaining({ state: "discovered", managed_process: true })]);
  });

  it("runs `steward agents discover|start|stop` against the running server", async () => {
    const client = { url: baseUrl, apiKey: t.adminKey };
    expect(await runAgentsCommand(client, ["discover"])).toMatch(/sleeper 0\.1\.0/);
    const id = (await t.request({ method: "GET", url: "/api/v1/agents?name=sleeper" })).json().items[0].id;
    await t.request({ method: "POST", url: "/api/v1/agents", payload: { agent_id: id } });

    expect(await runAgentsCommand(client, ["start", id])).toMatch(
      new RegExp(`^${id}: running \\(pid \\d+\\)$`),
    );
    expect(await runAgentsCommand(client, ["stop", id])).toBe(`${id}: stopped`);
    await expect(runAgentsCommand(client, ["stop", "nobody-1"])).rejects.toThrow(/^404: /);
    await expect(runAgentsCommand({ ...client, apiKey: "sk_live_wrong" }, ["discover"])).rejects.toThrow(
      /^401: /,
    );
  });
});

describe("shutting down", () => {
  it("answers waiting config long-polls at once instead of waiting them out", async () => {
    const t = await startTestSteward("postgres");
    const baseUrl = await t.steward.server.listen({ host: "127.0.0.1", port: 0 });
    const registered = await t.request({
      method: "POST",
      url: "/api/v1/agents",
      payload: {
        name: "waiter",
        version: "1.0.0",
        description: "d",
        subscribed_topics: ["a.b"],
        findings_topic: "c.d",
      },
    });
    const { agent, credentials } = registered.json();
    const poll = fetch(`${baseUrl}/api/v1/agents/${agent.id}/control?after=0&wait_s=60`, {
      headers: { authorization: `Bearer ${credentials.token}` },
    });
    await until(() => t.logs.some((line) => line.includes("/control?after=0")));
    // Were close() to wait the poll out, this test would run into its 30 s timeout.
    await t.close();
    expect((await poll).status).toBe(204);
  });
});

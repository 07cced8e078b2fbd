import { createAccount } from "@nats-io/jwt";
import {
  AuthorizationError,
  connect,
  credsAuthenticator,
  type Msg,
  type NatsConnection,
  PermissionViolationError,
  type Subscription,
} from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type AgentSubjects, NatsCredentialIssuer } from "../../src/lifecycle/nats-credentials.js";
import { type DecentralizedNatsServer, startDecentralizedNatsServer } from "../helpers/nats-server.js";

function subjectsFor(agentId: string): AgentSubjects {
  return { agentId, subscribedTopics: ["scans.requested.>"], findingsTopic: `findings.${agentId}` };
}

describe("NATS credentials scoped to one agent (real nats-server, decentralized auth)", () => {
  let server: DecentralizedNatsServer;
  let issuer: NatsCredentialIssuer;
  let admin: NatsConnection;
  const opened: NatsConnection[] = [];

  async function connectWith(creds: string): Promise<NatsConnection> {
    const nc = await connect({
      servers: server.url,
      authenticator: credsAuthenticator(new TextEncoder().encode(creds)),
      reconnect: false,
    });
    opened.push(nc);
    return nc;
  }

  /** An agent connection and the errors the server reports to it (the status stream's "error" events). */
  async function connectAgent(agentId: string): Promise<{ agent: NatsConnection; errors: Error[] }> {
    const { creds } = await issuer.issue(subjectsFor(agentId), 60);
    const agent = await connectWith(creds);
    const errors: Error[] = [];
    // Ends when afterEach closes the connection.
    void (async () => {
      for await (const status of agent.status()) {
        if (status.type === "error") errors.push(status.error);
      }
    })();
    return { agent, errors };
  }

  /** Resolves with the first message on the subscription. */
  async function firstMessage(sub: Subscription): Promise<Msg> {
    for await (const msg of sub) return msg;
    throw new Error(`subscription on ${sub.getSubject()} closed without a message`);
  }

  beforeAll(async () => {
    server = await startDecentralizedNatsServer();
    issuer = new NatsCredentialIssuer(server.accountSeed);
    admin = await connect({
      servers: server.url,
      authenticator: credsAuthenticator(new TextEncoder().encode(await server.adminCreds())),
    });
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((nc) => nc.close()));
  });

  afterAll(async () => {
    await admin?.close();
    await server?.stop();
  });

  it("signs users with the account the server trusts", () => {
    expect(issuer.accountPublicKey).toBe(server.accountPublicKey);
  });

  it("lets the agent publish its heartbeat and findings and receive its control messages", async () => {
    const { agent } = await connectAgent("scanner-1");
    const heartbeats = admin.subscribe("agents.scanner-1.heartbeat", { max: 1 });
    const findings = admin.subscribe("findings.scanner-1", { max: 1 });
    const control = agent.subscribe("agents.scanner-1.control", { max: 1 });
    await admin.flush();
    await agent.flush();

    agent.publish("agents.scanner-1.heartbeat", "beat");
    agent.publish("findings.scanner-1", "finding");
    admin.publish("agents.scanner-1.control", "stop");

    expect((await firstMessage(heartbeats)).string()).toBe("beat");
    expect((await firstMessage(findings)).string()).toBe("finding");
    expect((await firstMessage(control)).string()).toBe("stop");
  });

  it("lets the agent subscribe to its wildcard topics and make requests (replies on _INBOX)", async () => {
    const { agent } = await connectAgent("scanner-1");
    const requested = agent.subscribe("scans.requested.>", { max: 1 });
    const responder = admin.subscribe("agents.scanner-1.metrics", {
      max: 1,
      callback: (_err, msg) => {
        msg.respond("ack");
      },
    });
    await agent.flush();
    await admin.flush();

    admin.publish("scans.requested.repo.42", "scan");
    expect((await firstMessage(requested)).subject).toBe("scans.requested.repo.42");
    const reply = await agent.request("agents.scanner-1.metrics", "cpu=3", { timeout: 5_000 });
    expect(reply.string()).toBe("ack");
    responder.unsubscribe();
  });

  it("refuses a publish on another agent's subject: the client reports a permissions violation and nothing arrives", async () => {
    const { agent, errors } = await connectAgent("scanner-1");
    const received: string[] = [];
    const watcher = admin.subscribe("agents.*.heartbeat", {
      callback: (_err, msg) => {
        received.push(msg.subject);
      },
    });
    await admin.flush();

    agent.publish("agents.scanner-2.heartbeat", "forged");
    // The server delivers one connection's messages in order, so once this own beat has
    // arrived a forged one delivered before it would already have been recorded.
    agent.publish("agents.scanner-1.heartbeat", "own");
    await agent.flush();

    await expect.poll(() => errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(PermissionViolationError);
    expect(errors[0]).toMatchObject({ operation: "publish", subject: "agents.scanner-2.heartbeat" });
    await expect.poll(() => received).toContain("agents.scanner-1.heartbeat");
    expect(received).toEqual(["agents.scanner-1.heartbeat"]);
    expect(agent.isClosed()).toBe(false);
    watcher.unsubscribe();
  });

  it("refuses a subscription to another agent's control subject", async () => {
    const { agent } = await connectAgent("scanner-1");
    const sub = agent.subscribe("agents.scanner-2.control");
    // The server answers SUB before the flush's PING, so the refusal has arrived by now.
    await agent.flush();

    expect(sub.isClosed()).toBe(true);
    const closedWith = await sub.closed;
    expect(closedWith).toBeInstanceOf(PermissionViolationError);
    expect(closedWith).toMatchObject({ operation: "subscription", subject: "agents.scanner-2.control" });
  });

  it("refuses a subscription to every agent's subjects", async () => {
    const { agent } = await connectAgent("scanner-1");
    const sub = agent.subscribe("agents.>");
    await agent.flush();

    expect(sub.isClosed()).toBe(true);
    expect(await sub.closed).toBeInstanceOf(PermissionViolationError);
  });

  it("accepts users signed by an account signing key when the issuer names the account", async () => {
    const issuer = new NatsCredentialIssuer(server.signingKeySeed, { account: server.accountPublicKey });
    const { creds } = await issuer.issue(subjectsFor("scanner-1"), 60);
    const agent = await connectWith(creds);
    const heartbeats = admin.subscribe("agents.scanner-1.heartbeat", { max: 1 });
    await admin.flush();

    agent.publish("agents.scanner-1.heartbeat", "beat");
    expect((await firstMessage(heartbeats)).string()).toBe("beat");
  });

  it("refuses users signed by a signing key when the issuer does not name the account", async () => {
    const issuer = new NatsCredentialIssuer(server.signingKeySeed);
    const { creds } = await issuer.issue(subjectsFor("scanner-1"), 60);

    await expect(connectWith(creds)).rejects.toBeInstanceOf(AuthorizationError);
  });

  it("refuses an expired credential on connect", async () => {
    // Issued as if a minute ago with a 1 s lifetime: expired now, without the test sleeping.
    const past = new NatsCredentialIssuer(server.accountSeed, { clock: () => new Date(Date.now() - 60_000) });
    const { creds, expiresAt } = await past.issue(subjectsFor("scanner-1"), 1);
    expect(expiresAt.getTime()).toBeLessThan(Date.now());

    await expect(connectWith(creds)).rejects.toBeInstanceOf(AuthorizationError);
  });

  it("refuses a credential signed by an account the server does not trust", async () => {
    const stranger = new NatsCredentialIssuer(new TextDecoder().decode(createAccount().getSeed()));
    const { creds } = await stranger.issue(subjectsFor("scanner-1"), 60);

    await expect(connectWith(creds)).rejects.toBeInstanceOf(AuthorizationError);
  });
});

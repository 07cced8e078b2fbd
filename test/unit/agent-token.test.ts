import { randomBytes } from "node:crypto";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { authorize, type Principal } from "../../src/auth/permissions.js";
import { SecretBox } from "../../src/crypto/secret-box.js";
import { AgentTokens } from "../../src/lifecycle/agent-token.js";

const agent = {
  id: "log-analyser-5e0c5a8e-9c1b-4c47-9a43-0f1f2d3c4b5a",
  organizationId: "org_a",
  tokenGeneration: 2,
};

describe("managed agent tokens", () => {
  const key = randomBytes(32);
  const tokens = new AgentTokens(new SecretBox(key), 900);

  it("verifies its own tokens with the agent, organization and generation they were issued for", async () => {
    const { token, expiresAt } = await tokens.issue(agent, new Date());
    expect(expiresAt.getTime() - Date.now()).toBeGreaterThan(890_000);
    expect(await tokens.verify(token)).toEqual({ agentId: agent.id, organizationId: "org_a", generation: 2 });
  });

  it("refuses an expired token, a tampered one and one signed with another key", async () => {
    const { token: old } = await tokens.issue(agent, new Date(Date.now() - 901_000));
    expect(await tokens.verify(old)).toBeNull();
    const { token } = await tokens.issue(agent);
    const [header, payload, signature] = token.split(".");
    const forged = Buffer.from(
      JSON.stringify({
        ...JSON.parse(Buffer.from(payload as string, "base64url").toString()),
        sub: "other-agent",
      }),
    ).toString("base64url");
    expect(await tokens.verify(`${header}.${forged}.${signature}`)).toBeNull();
    const stranger = new AgentTokens(new SecretBox(randomBytes(32)), 900);
    expect(await tokens.verify((await stranger.issue(agent)).token)).toBeNull();
  });

  it("does not take another issuer's JWT signed with the same secret for an agent token", async () => {
    const box = new SecretBox(key);
    const lookalike = await new SignJWT({ org: "org_a", gen: 2 })
      .setProtectedHeader({ alg: "HS256", kid: box.currentKeyId })
      .setIssuer("someone-else")
      .setAudience("steward-managed-agent")
      .setSubject(agent.id)
      .setExpirationTime("5m")
      .sign(box.derivedKey("managed-agent-tokens"));
    expect(await tokens.verify(lookalike)).toBeNull();
  });

  it("keeps tokens signed before a key rotation valid while the old key is a previous key", async () => {
    const { token } = await tokens.issue(agent);
    const rotated = new AgentTokens(new SecretBox(randomBytes(32), [key]), 900);
    expect(await rotated.verify(token)).toMatchObject({ agentId: agent.id });
    const forgotten = new AgentTokens(new SecretBox(randomBytes(32)), 900);
    expect(await forgotten.verify(token)).toBeNull();
  });
});

describe("a managed agent's principal", () => {
  const principal: Principal = {
    type: "agent",
    id: agent.id,
    agentId: agent.id,
    organizationId: "org_a",
    roles: [],
    team: null,
    platformAdmin: false,
  };

  it("may read and update agents, nothing else", () => {
    expect(authorize(principal, "agents:read").allowed).toBe(true);
    expect(authorize(principal, "agents:update").allowed).toBe(true);
    for (const permission of [
      "agents:manage",
      "external_agents:read",
      "external_agents:invoke",
      "lineage:read",
    ] as const)
      expect(authorize(principal, permission).allowed).toBe(false);
  });

  it("may not act on another organization", () => {
    expect(authorize(principal, "agents:read", "org_b").allowed).toBe(false);
  });
});

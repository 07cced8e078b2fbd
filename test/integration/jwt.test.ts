import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestSteward, type TestSteward } from "../helpers/steward.js";

const ISSUER = "https://id.example.test/";
const AUDIENCE = "steward";
const SECRET = "a-jwt-signing-secret-that-is-long-enough";
const AGENTS = "/api/v1/external-agents";

function token(
  claims: Record<string, unknown>,
  options: { secret?: string; audience?: string; issuer?: string; expiresIn?: string } = {},
) {
  return new SignJWT({ org_id: "default", roles: ["developer"], ...claims })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("user-42")
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? "5m")
    .sign(new TextEncoder().encode(options.secret ?? SECRET));
}

describe("JWT with a shared secret", () => {
  let t: TestSteward;
  beforeAll(async () => {
    t = await startTestSteward("postgres", {
      STEWARD_JWT_SECRET: SECRET,
      STEWARD_JWT_ISSUER: ISSUER,
      STEWARD_JWT_AUDIENCE: AUDIENCE,
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  const get = (jwt: string) => t.request({ method: "GET", url: AGENTS, key: jwt });

  it("maps claims to organization, user and roles", async () => {
    const developer = await token({});
    expect((await get(developer)).statusCode).toBe(200);
    const created = await t.request({
      method: "POST",
      url: AGENTS,
      key: developer,
      payload: { name: "jwt-made", platform: "custom_http", webhook_url: "https://a.example.com" },
    });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ organization_id: "default", created_by: "user-42" });
    const remove = await t.request({
      method: "DELETE",
      url: `${AGENTS}/${created.json().id}`,
      key: developer,
    });
    expect(remove.statusCode).toBe(403);
  });

  it("matches the organization claim by name too", async () => {
    const org = (
      await t.request({ method: "POST", url: "/api/v1/orgs", payload: { name: "jwt-org" } })
    ).json();
    const list = await get(await token({ org_id: "jwt-org", roles: "viewer" }));
    expect(list.statusCode).toBe(200);
    expect(list.json().total).toBe(0);
    expect(org.id).toMatch(/^org_/);
  });

  it("refuses bad signature, wrong audience or issuer, expiry, unknown org and alg none", async () => {
    const unsigned = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${Buffer.from(
      JSON.stringify({ sub: "x", org_id: "default", roles: ["admin"], iss: ISSUER, aud: AUDIENCE }),
    ).toString("base64url")}.`;
    const cases = {
      "bad signature": await token({}, { secret: "another-secret-that-is-long-enough-too" }),
      "wrong audience": await token({}, { audience: "someone-else" }),
      "wrong issuer": await token({}, { issuer: "https://evil.example/" }),
      expired: await token({}, { expiresIn: "-1m" }),
      "unknown organization": await token({ org_id: "no-such-org" }),
      "alg none": unsigned,
    };
    for (const [name, jwt] of Object.entries(cases)) {
      expect((await get(jwt)).statusCode, name).toBe(401);
    }
  });

  it("grants nothing to a token without known roles", async () => {
    expect((await get(await token({ roles: ["wizard"] }))).statusCode).toBe(403);
  });
});

describe("JWT from a JWKS endpoint", () => {
  let t: TestSteward;
  let jwks: Server;
  let privateKey: Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];

  beforeAll(async () => {
    const pair = await generateKeyPair("RS256");
    privateKey = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
    jwks = createServer((_request, response) => {
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
    const { port } = jwks.address() as AddressInfo;
    t = await startTestSteward("postgres", {
      STEWARD_JWT_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`,
      STEWARD_JWT_ISSUER: ISSUER,
      STEWARD_JWT_AUDIENCE: AUDIENCE,
    });
  });
  afterAll(async () => {
    await t?.close();
    jwks?.close();
  });

  it("verifies RS256 tokens against the published keys", async () => {
    const jwt = await new SignJWT({ org_id: "default", roles: ["viewer"] })
      .setProtectedHeader({ alg: "RS256", kid: "k1" })
      .setSubject("user-7")
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime("5m")
      .sign(privateKey);
    expect((await t.request({ method: "GET", url: AGENTS, key: jwt })).statusCode).toBe(200);
    const forged = await token({});
    expect((await t.request({ method: "GET", url: AGENTS, key: forged })).statusCode).toBe(401);
  });
});

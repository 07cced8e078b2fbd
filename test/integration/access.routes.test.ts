import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../helpers/eventually.js";
import { createKey, createOrgWithKey, startTestSteward, type TestSteward } from "../helpers/steward.js";

let t: TestSteward;
beforeAll(async () => {
  t = await startTestSteward("postgres");
});
afterAll(async () => {
  await t?.close();
});

const KEYS = "/api/v1/api-keys";

describe("organizations", () => {
  it("lets a platform admin create and list organizations", async () => {
    const response = await t.request({ method: "POST", url: "/api/v1/orgs", payload: { name: "acme" } });
    expect(response.statusCode).toBe(201);
    const org = response.json();
    expect(Object.keys(org).sort()).toEqual(["created_at", "id", "name"]);
    expect(org).toMatchObject({ id: expect.stringMatching(/^org_/), name: "acme" });

    const list = (await t.request({ method: "GET", url: "/api/v1/orgs?limit=100" })).json();
    expect(list.items.map((item: { name: string }) => item.name)).toEqual(
      expect.arrayContaining(["acme", "default"]),
    );
  });

  it("answers 409 for a duplicate name", async () => {
    await t.request({ method: "POST", url: "/api/v1/orgs", payload: { name: "dup-org" } });
    const again = await t.request({ method: "POST", url: "/api/v1/orgs", payload: { name: "dup-org" } });
    expect(again.statusCode).toBe(409);
  });

  it("is for platform admins only", async () => {
    const { key } = await createOrgWithKey(t, "owner");
    expect(
      (await t.request({ method: "POST", url: "/api/v1/orgs", payload: { name: "x" }, key })).statusCode,
    ).toBe(403);
    expect((await t.request({ method: "GET", url: "/api/v1/orgs", key })).statusCode).toBe(403);
  });
});

describe("API keys", () => {
  it("shows a new key once and never again", async () => {
    const response = await t.request({
      method: "POST",
      url: KEYS,
      payload: { name: "ci", role: "developer" },
    });
    expect(response.statusCode).toBe(201);
    const created = response.json();
    expect(created).toMatchObject({
      id: expect.stringMatching(/^key_/),
      key: expect.stringMatching(/^sk_live_[0-9A-Za-z]{32}$/),
      role: "developer",
      organization_id: "default",
    });
    expect(created.key.startsWith(created.prefix)).toBe(true);

    const list = await t.request({ method: "GET", url: `${KEYS}?limit=100` });
    expect(list.body).not.toContain(created.key);
    const listed = list.json().items.find((item: { id: string }) => item.id === created.id);
    expect(listed).toMatchObject({ prefix: created.prefix, role: "developer", revoked_at: null });
    expect(listed).not.toHaveProperty("key");

    const { rows } = await t.steward.database.pool.query("SELECT * FROM api_keys WHERE id = $1", [
      created.id,
    ]);
    expect(JSON.stringify(rows)).not.toContain(created.key);
  });

  it("refuses a revoked key with 401", async () => {
    const key = await createKey(t, "viewer");
    expect((await t.request({ method: "GET", url: "/api/v1/external-agents", key })).statusCode).toBe(200);
    const id = (
      await t.steward.database.pool.query(
        "SELECT id FROM api_keys WHERE key_hash = encode(sha256($1::bytea), 'hex')",
        [key],
      )
    ).rows[0].id;
    expect((await t.request({ method: "DELETE", url: `${KEYS}/${id}` })).statusCode).toBe(204);
    expect((await t.request({ method: "DELETE", url: `${KEYS}/${id}` })).statusCode).toBe(204);
    expect((await t.request({ method: "GET", url: "/api/v1/external-agents", key })).statusCode).toBe(401);
  });

  it("refuses a key with 401 once it has expired", async () => {
    // Long enough for the first request to land before it, even on a loaded machine.
    const expiresAt = Date.now() + 4_000;
    const response = await t.request({
      method: "POST",
      url: KEYS,
      payload: { name: "short", role: "viewer", expires_at: new Date(expiresAt).toISOString() },
    });
    const { key } = response.json();
    const status = async () =>
      (await t.request({ method: "GET", url: "/api/v1/external-agents", key })).statusCode;
    expect(await status()).toBe(200);
    await until(() => Date.now() > expiresAt);
    // Verified keys are cached; the expiry is still checked on every request.
    expect(await status()).toBe(401);
  });

  it("refuses an expiry in the past and an unknown role", async () => {
    const past = await t.request({
      method: "POST",
      url: KEYS,
      payload: { name: "late", role: "viewer", expires_at: "2001-01-01T00:00:00Z" },
    });
    expect(past.statusCode).toBe(400);
    expect(past.json().error.details.errors[0].field).toBe("expires_at");
    const role = await t.request({ method: "POST", url: KEYS, payload: { name: "x", role: "superuser" } });
    expect(role.statusCode).toBe(400);
    expect(role.json().error.details.errors[0].field).toBe("role");
  });

  it("keeps organization admins inside their organization", async () => {
    const acme = await createOrgWithKey(t, "admin");
    const globex = await createOrgWithKey(t, "admin");
    const crossCreate = await t.request({
      method: "POST",
      url: KEYS,
      key: acme.key,
      payload: { name: "x", role: "owner", organization_id: globex.organizationId },
    });
    expect(crossCreate.statusCode).toBe(403);
    const crossList = await t.request({
      method: "GET",
      url: `${KEYS}?organization_id=${globex.organizationId}`,
      key: acme.key,
    });
    expect(crossList.statusCode).toBe(403);

    const globexKeys = (await t.request({ method: "GET", url: KEYS, key: globex.key })).json().items;
    const revoke = await t.request({ method: "DELETE", url: `${KEYS}/${globexKeys[0].id}`, key: acme.key });
    expect(revoke.statusCode).toBe(404);
    expect((await t.request({ method: "GET", url: KEYS, key: globex.key })).statusCode).toBe(200);
  });

  it("is refused to roles without api_keys:manage", async () => {
    const developer = await createKey(t, "developer");
    const response = await t.request({
      method: "POST",
      url: KEYS,
      key: developer,
      payload: { name: "x", role: "admin" },
    });
    expect(response.statusCode).toBe(403);
  });
});

describe("bootstrap", () => {
  it("keeps exactly one bootstrap key across restarts", async () => {
    const schemaEnv = {
      STEWARD_DB_SCHEMA: t.steward.database.schema,
      STEWARD_BOOTSTRAP_ADMIN_KEY: t.adminKey,
    };
    const second = await startTestSteward("postgres", schemaEnv);
    await second.close();
    const { rows } = await t.steward.database.pool.query(
      "SELECT platform_admin, organization_id FROM api_keys WHERE key_hash = encode(sha256($1::bytea), 'hex')",
      [t.adminKey],
    );
    expect(rows).toEqual([{ platform_admin: true, organization_id: "default" }]);
  });

  it("creates a first admin key when there is none, once", async () => {
    const first = await startTestSteward("postgres", { STEWARD_BOOTSTRAP_ADMIN_KEY: "" });
    try {
      const key = first.steward.firstAdminKey;
      expect(key).toMatch(/^sk_live_/);
      const org = await first.request({
        method: "POST",
        url: "/api/v1/orgs",
        payload: { name: "made-by-first" },
        key,
      });
      expect(org.statusCode).toBe(201);
      const again = await startTestSteward("postgres", {
        STEWARD_BOOTSTRAP_ADMIN_KEY: "",
        STEWARD_DB_SCHEMA: first.steward.database.schema,
      });
      expect(again.steward.firstAdminKey).toBeUndefined();
      await again.close();
    } finally {
      await first.close();
    }
  });
});

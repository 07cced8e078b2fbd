import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SECRETS, slackAgent, telegramAgent } from "../helpers/agents.js";
import { createKey, createOrgWithKey, startTestSteward, type TestSteward } from "../helpers/steward.js";

let t: TestSteward;
beforeAll(async () => {
  t = await startTestSteward("postgres");
});
afterAll(async () => {
  await t?.close();
});

const AGENTS = "/api/v1/external-agents";
const create = (body: Record<string, unknown>, key?: string) =>
  t.request({ method: "POST", url: AGENTS, payload: body, key });
const fieldsOf = (body: { error: { details?: { errors?: Array<{ field: string }> } } }) =>
  body.error.details?.errors?.map((error) => error.field) ?? [];

describe("happy path", () => {
  it("registers an agent and answers 201 with credentials masked", async () => {
    const response = await create(slackAgent({ name: "happy-create" }));
    expect(response.statusCode).toBe(201);
    const agent = response.json();
    expect(agent.id).toMatch(/^agt_[0-9a-z]{26}$/);
    expect(agent).toMatchObject({
      organization_id: "default",
      name: "happy-create",
      platform: "slack",
      auth_type: "oauth2",
      status: "active",
      version: 1,
      auth_config: { client_id: "steward-client", client_secret: "****1111" },
      platform_config: { channel: "#support", webhook_url: "****2222" },
      rate_limit_config: { requests_per_minute: 60 },
      budget_config: {
        max_monthly_cost: 100,
        currency: "USD",
        warning_threshold: 0.8,
        degradation_threshold: 0.9,
        enforcement_mode: "hard",
      },
      tags: ["support", "tier1"],
    });
    expect(response.body).not.toContain("CANARY");
  });

  it("reads an agent back by id", async () => {
    const created = (await create(telegramAgent({ name: "happy-read" }))).json();
    const response = await t.request({ method: "GET", url: `${AGENTS}/${created.id}` });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual(created);
    expect(response.json().platform_config).toEqual({ bot_token: "****3333", chat_id: -1001234567 });
  });

  it("updates fields, bumps the version and keeps a secret sent back masked", async () => {
    const created = (await create(slackAgent({ name: "happy-update" }))).json();
    const sealedBefore = await sealedClientSecret(created.id);
    const response = await t.request({
      method: "PATCH",
      url: `${AGENTS}/${created.id}`,
      payload: {
        description: "Now with a new scope",
        auth_config: { ...created.auth_config, scope: "agents.invoke" },
        tags: ["support"],
        status: "inactive",
      },
    });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      description: "Now with a new scope",
      auth_config: { client_secret: "****1111", scope: "agents.invoke" },
      tags: ["support"],
      status: "inactive",
      version: 2,
    });
    expect(await sealedClientSecret(created.id)).toBe(sealedBefore);
  });

  it("accepts a platform config sent back exactly as it was read", async () => {
    const created = (await create(slackAgent({ name: "happy-echo" }))).json();
    const response = await t.request({
      method: "PATCH",
      url: `${AGENTS}/${created.id}`,
      payload: { platform_config: { ...created.platform_config, channel: "#support-2" } },
    });
    expect(response.statusCode).toBe(200);
    expect(response.json().platform_config).toEqual({ webhook_url: "****2222", channel: "#support-2" });
  });

  it("replaces a secret when a new value is sent", async () => {
    const created = (await create(slackAgent({ name: "happy-rotate" }))).json();
    const response = await t.request({
      method: "PATCH",
      url: `${AGENTS}/${created.id}`,
      payload: { auth_config: { ...created.auth_config, client_secret: "a-brand-new-secret-9999" } },
    });
    expect(response.json().auth_config.client_secret).toBe("****9999");
  });

  it("changes auth type when the new credentials come with it", async () => {
    const created = (await create(slackAgent({ name: "happy-auth-type" }))).json();
    const response = await t.request({
      method: "PATCH",
      url: `${AGENTS}/${created.id}`,
      payload: {
        auth_type: "api_key",
        auth_config: { key: "agent-api-key-value-5555", header_name: "X-Agent-Key" },
      },
    });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      auth_type: "api_key",
      auth_config: { key: "****5555", header_name: "X-Agent-Key" },
    });
  });

  it("deletes softly, and deleting twice answers 204 again", async () => {
    const created = (await create(slackAgent({ name: "happy-delete" }))).json();
    const first = await t.request({ method: "DELETE", url: `${AGENTS}/${created.id}` });
    expect(first.statusCode).toBe(204);
    expect(first.body).toBe("");
    expect((await t.request({ method: "DELETE", url: `${AGENTS}/${created.id}` })).statusCode).toBe(204);
    const after = await t.request({ method: "GET", url: `${AGENTS}/${created.id}` });
    expect(after.json()).toMatchObject({ status: "deleted" });
    expect(after.json().deleted_at).not.toBeNull();
  });

  it("echoes a caller's X-Request-Id, and makes one up otherwise", async () => {
    const given = await t.request({
      method: "GET",
      url: AGENTS,
      headers: { "x-request-id": "trace-abc.123" },
    });
    expect(given.headers["x-request-id"]).toBe("trace-abc.123");
    const made = await t.request({ method: "GET", url: AGENTS });
    expect(made.headers["x-request-id"]).toMatch(/^req_/);
  });
});

describe("errors", () => {
  it("names each invalid field in a 400", async () => {
    const response = await create({
      name: "",
      platform: "teams",
      webhook_url: "ftp://agent.example.com",
      auth_type: "oauth2",
      auth_config: { client_id: "x" },
      platform_config: { channel_id: "c" },
    });
    expect(response.statusCode).toBe(400);
    const body = response.json();
    expect(body.error).toMatchObject({
      code: "VALIDATION_ERROR",
      request_id: expect.stringMatching(/^req_/),
    });
    expect(fieldsOf(body)).toContain("name");

    const domain = await create({
      ...slackAgent({ name: "bad-configs" }),
      webhook_url: "ftp://x",
      auth_config: { client_id: "x" },
    });
    expect(domain.statusCode).toBe(400);
    expect(fieldsOf(domain.json())).toEqual(
      expect.arrayContaining(["webhook_url", "auth_config.client_secret", "auth_config.token_url"]),
    );
  });

  it("validates platform_config against the platform", async () => {
    const response = await create(
      telegramAgent({ name: "bad-telegram", platform_config: { chat_id: 1, extra: true } }),
    );
    expect(response.statusCode).toBe(400);
    expect(fieldsOf(response.json())).toEqual(["platform_config.bot_token", "platform_config.extra"]);
  });

  it("refuses unknown fields, negative budgets and zero rate limits", async () => {
    const response = await create(
      slackAgent({
        name: "bad-governance",
        rate_limit_config: { requests_per_minute: 0 },
        budget_config: { max_daily_cost: -1 },
        approvals: true,
      }),
    );
    expect(response.statusCode).toBe(400);
    expect(fieldsOf(response.json())).toEqual(
      expect.arrayContaining([
        "approvals",
        "rate_limit_config.requests_per_minute",
        "budget_config.max_daily_cost",
      ]),
    );
  });

  it("refuses a platform change, and an auth type change without credentials", async () => {
    const created = (await create(slackAgent({ name: "fixed-platform" }))).json();
    const platform = await t.request({
      method: "PATCH",
      url: `${AGENTS}/${created.id}`,
      payload: { platform: "teams" },
    });
    expect(platform.statusCode).toBe(400);
    expect(fieldsOf(platform.json())).toEqual(["platform"]);
    const authType = await t.request({
      method: "PATCH",
      url: `${AGENTS}/${created.id}`,
      payload: { auth_type: "basic" },
    });
    expect(authType.statusCode).toBe(400);
    expect(fieldsOf(authType.json())).toEqual(["auth_config"]);
  });

  it("answers 409 for a name already taken, on create and on rename", async () => {
    await create(slackAgent({ name: "taken" }));
    const duplicate = await create(slackAgent({ name: "taken" }));
    expect(duplicate.statusCode).toBe(409);
    expect(duplicate.json().error.code).toBe("CONFLICT");
    const other = (await create(slackAgent({ name: "not-yet-taken" }))).json();
    const rename = await t.request({
      method: "PATCH",
      url: `${AGENTS}/${other.id}`,
      payload: { name: "taken" },
    });
    expect(rename.statusCode).toBe(409);
  });

  it("answers 409 when changing a deleted agent", async () => {
    const created = (await create(slackAgent({ name: "deleted-then-patched" }))).json();
    await t.request({ method: "DELETE", url: `${AGENTS}/${created.id}` });
    const response = await t.request({
      method: "PATCH",
      url: `${AGENTS}/${created.id}`,
      payload: { description: "x" },
    });
    expect(response.statusCode).toBe(409);
  });

  it("answers 404 for an id that does not exist", async () => {
    for (const method of ["GET", "PATCH", "DELETE"] as const) {
      const response = await t.request({
        method,
        url: `${AGENTS}/agt_00000000000000000000000000`,
        ...(method === "PATCH" ? { payload: { description: "x" } } : {}),
      });
      expect(response.statusCode).toBe(404);
      expect(response.json().error.code).toBe("NOT_FOUND");
    }
  });

  it("answers 400 for malformed JSON and bad list parameters", async () => {
    const malformed = await t.request({
      method: "POST",
      url: AGENTS,
      payload: '{"name": "x",',
      headers: { "content-type": "application/json" },
    });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error.code).toBe("BAD_REQUEST");
    for (const query of ["limit=0", "limit=101", "page=0", "platform=fax", "status=gone"]) {
      const response = await t.request({ method: "GET", url: `${AGENTS}?${query}` });
      expect(response.statusCode, query).toBe(400);
      expect(fieldsOf(response.json()), query).toEqual([query.split("=")[0]]);
    }
  });

  it("refuses prototype-polluting keys without touching Object.prototype", async () => {
    const response = await t.request({
      method: "POST",
      url: AGENTS,
      payload:
        '{"name":"proto","platform":"slack","webhook_url":"https://a.example.com","__proto__":{"polluted":true}}',
      headers: { "content-type": "application/json" },
    });
    expect(response.statusCode).toBe(400);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("answers 413 for a body over the limit", async () => {
    const response = await create(slackAgent({ name: "huge", description: "x".repeat(1024 * 1024 + 1) }));
    expect(response.statusCode).toBe(413);
    expect(response.json().error.code).toBe("PAYLOAD_TOO_LARGE");
  });

  it("answers 404 in the envelope for an unknown route", async () => {
    const response = await t.request({ method: "GET", url: "/api/v1/nothing-here" });
    expect(response.statusCode).toBe(404);
    expect(response.json().error.code).toBe("NOT_FOUND");
  });
});

describe("security", () => {
  it("answers 401 without a credential or with an unknown one", async () => {
    const none = await t.request({ method: "GET", url: AGENTS, key: null });
    expect(none.statusCode).toBe(401);
    expect(none.json().error.code).toBe("UNAUTHORIZED");
    const unknown = await t.request({
      method: "GET",
      url: AGENTS,
      key: "sk_live_not-a-real-key-000000000000",
    });
    expect(unknown.statusCode).toBe(401);
  });

  it("accepts the key in X-API-Key as well", async () => {
    const response = await t.request({
      method: "GET",
      url: AGENTS,
      key: null,
      headers: { "x-api-key": t.adminKey },
    });
    expect(response.statusCode).toBe(200);
  });

  it("answers 403 when the role lacks the permission", async () => {
    const viewer = await createKey(t, "viewer");
    expect((await t.request({ method: "GET", url: AGENTS, key: viewer })).statusCode).toBe(200);
    const denied = await create(slackAgent({ name: "viewer-made" }), viewer);
    expect(denied.statusCode).toBe(403);
    expect(denied.json().error.code).toBe("FORBIDDEN");

    const developer = await createKey(t, "developer");
    const created = await create(slackAgent({ name: "developer-made" }), developer);
    expect(created.statusCode).toBe(201);
    const remove = await t.request({
      method: "DELETE",
      url: `${AGENTS}/${created.json().id}`,
      key: developer,
    });
    expect(remove.statusCode).toBe(403);
  });

  it("answers 404 for another organization's agent and changes nothing", async () => {
    const other = await createOrgWithKey(t, "admin");
    const theirs = (await create(slackAgent({ name: "their-agent" }), other.key)).json();
    const before = await rowChecksum(theirs.id);

    for (const [method, payload] of [
      ["GET", undefined],
      ["PATCH", { name: "hijacked" }],
      ["DELETE", undefined],
    ] as const) {
      const response = await t.request({
        method,
        url: `${AGENTS}/${theirs.id}`,
        ...(payload ? { payload } : {}),
      });
      expect(response.statusCode, method).toBe(404);
    }
    expect(await rowChecksum(theirs.id)).toBe(before);
    const mine = (await t.request({ method: "GET", url: `${AGENTS}?search=their-agent` })).json();
    expect(mine.total).toBe(0);
    const theirList = (await t.request({ method: "GET", url: `${AGENTS}?limit=100`, key: other.key })).json();
    expect(theirList.items.map((agent: { id: string }) => agent.id)).toEqual([theirs.id]);
  });

  it("never writes a credential to the logs", async () => {
    await create(slackAgent({ name: "log-check" }));
    const logs = t.logs.join("\n");
    expect(logs.length).toBeGreaterThan(0);
    for (const secret of Object.values(SECRETS)) expect(logs).not.toContain(secret);
    expect(logs).not.toContain(t.adminKey);
  });
});

async function sealedClientSecret(id: string): Promise<string> {
  const { rows } = await t.steward.database.pool.query<{ sealed: string }>(
    "SELECT auth_config->'client_secret'->>'$sealed' AS sealed FROM external_agents WHERE id = $1",
    [id],
  );
  return rows[0]?.sealed ?? "";
}

async function rowChecksum(id: string): Promise<string> {
  const { rows } = await t.steward.database.pool.query<{ sum: string }>(
    "SELECT md5(row_to_json(a)::text) AS sum FROM external_agents a WHERE id = $1",
    [id],
  );
  return rows[0]?.sum ?? "";
}

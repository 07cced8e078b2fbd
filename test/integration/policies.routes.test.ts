import type { FastifyInstance, InjectOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerAccessControl } from "../../src/auth/access-control.js";
import { ApiKeyService } from "../../src/auth/api-key.service.js";
import { createAuthenticator } from "../../src/auth/authenticator.js";
import { policyRoutes } from "../../src/governance/policies/policy.routes.js";
import { PolicyService } from "../../src/governance/policies/policy.service.js";
import { createHttpServer } from "../../src/http/server.js";
import { createLogger } from "../../src/observability/logger.js";
import { createKey, createOrgWithKey, startTestSteward, type TestSteward } from "../helpers/steward.js";

/**
 * The policy routes on a real Steward database. The test Steward provides the migrated
 * schema, organizations and keys; the routes run on a server wired like src/app.ts.
 */

let t: TestSteward;
let app: FastifyInstance;
let service: PolicyService;

beforeAll(async () => {
  t = await startTestSteward("postgres");
  const db = t.steward.database.db;
  service = new PolicyService(db);
  app = await createHttpServer({
    logger: createLogger("silent"),
    bodyLimitBytes: 1024 * 1024,
    version: "test",
    api: true,
  });
  await app.register(
    async (api) => {
      registerAccessControl(
        api,
        createAuthenticator(new ApiKeyService(db), async () => null),
      );
      await api.register(policyRoutes(service));
    },
    { prefix: "/api/v1" },
  );
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await t?.close();
});

const POLICIES = "/api/v1/policies";

function request({ key, headers, ...options }: InjectOptions & { key?: string | null }) {
  const credential = key === undefined ? t.adminKey : key;
  return app.inject({
    ...options,
    headers: { ...(credential ? { authorization: `Bearer ${credential}` } : {}), ...headers },
  });
}

const create = (body: Record<string, unknown>, key?: string) =>
  request({ method: "POST", url: POLICIES, payload: body, key });
const fieldsOf = (body: { error: { details?: { errors?: Array<{ field: string }> } } }) =>
  body.error.details?.errors?.map((error) => error.field) ?? [];

const officeHours = {
  name: "office-hours",
  description: "Production calls during Paris office hours only",
  effect: "allow",
  priority: 10,
  conditions: [
    { type: "environments", values: ["production"] },
    { type: "ip_ranges", values: ["10.0.0.0/8", "2001:db8::/32"] },
    { type: "time_range", start: "09:00", end: "18:00", days: ["mon", "tue"], timezone: "Europe/Paris" },
    { type: "custom", attribute: "context.department", equals: "finance" },
  ],
};
const ADMINS_CEDAR = 'permit(principal, action, resource) when { principal.roles.contains("admin") };';

async function auditActions(resourceId: string): Promise<string[]> {
  const { rows } = await t.steward.database.pool.query<{ action: string }>(
    "SELECT action FROM audit_events WHERE resource_id = $1 ORDER BY id",
    [resourceId],
  );
  return rows.map((row) => row.action);
}

describe("happy path", () => {
  it("creates a conditions policy and answers 201 with it", async () => {
    const response = await create({ ...officeHours, name: "happy-create" });
    expect(response.statusCode).toBe(201);
    const policy = response.json();
    expect(policy.id).toMatch(/^pol_[0-9a-z]{26}$/);
    expect(policy).toMatchObject({
      ...officeHours,
      name: "happy-create",
      organization_id: "default",
      enabled: true,
      cedar: null,
    });
    expect(await auditActions(policy.id)).toEqual(["policy.created"]);
  });

  it("creates a Cedar policy whose effect comes from permit or forbid", async () => {
    const permit = await create({ name: "happy-cedar-permit", cedar: ADMINS_CEDAR });
    expect(permit.statusCode).toBe(201);
    expect(permit.json()).toMatchObject({ effect: "allow", cedar: ADMINS_CEDAR, conditions: [] });
    const forbid = await create({
      name: "happy-cedar-forbid",
      effect: "deny",
      cedar: "forbid(principal, action, resource);",
    });
    expect(forbid.json()).toMatchObject({ effect: "deny" });
  });

  it("reads, updates and deletes a policy, auditing each change", async () => {
    const created = (await create({ name: "happy-lifecycle", effect: "deny" })).json();
    const read = await request({ method: "GET", url: `${POLICIES}/${created.id}` });
    expect(read.json()).toEqual(created);

    const patched = await request({
      method: "PATCH",
      url: `${POLICIES}/${created.id}`,
      payload: { priority: 7, enabled: false, conditions: [{ type: "roles", values: ["viewer"] }] },
    });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({ priority: 7, enabled: false, effect: "deny" });
    expect(Date.parse(patched.json().updated_at)).toBeGreaterThanOrEqual(Date.parse(created.updated_at));

    const toCedar = await request({
      method: "PATCH",
      url: `${POLICIES}/${created.id}`,
      payload: { cedar: ADMINS_CEDAR, conditions: [] },
    });
    expect(toCedar.json()).toMatchObject({ effect: "allow", cedar: ADMINS_CEDAR, conditions: [] });
    const back = await request({
      method: "PATCH",
      url: `${POLICIES}/${created.id}`,
      payload: { cedar: null, effect: "deny" },
    });
    expect(back.json()).toMatchObject({ effect: "deny", cedar: null });

    const removed = await request({ method: "DELETE", url: `${POLICIES}/${created.id}` });
    expect(removed.statusCode).toBe(204);
    expect(removed.body).toBe("");
    expect((await request({ method: "GET", url: `${POLICIES}/${created.id}` })).statusCode).toBe(404);
    expect(await auditActions(created.id)).toEqual([
      "policy.created",
      "policy.updated",
      "policy.updated",
      "policy.updated",
      "policy.deleted",
    ]);
  });

  it("lists in evaluation order with the standard envelope, filtered by enabled", async () => {
    const { key } = await createOrgWithKey(t, "admin");
    const low = (await create({ name: "low", effect: "allow", priority: -1 }, key)).json();
    const high = (await create({ name: "high", effect: "deny", priority: 5 }, key)).json();
    const off = (await create({ name: "off", effect: "deny", enabled: false }, key)).json();

    const all = await request({ method: "GET", url: POLICIES, key });
    expect(all.json()).toMatchObject({ total: 3, page: 1, limit: 20, has_more: false });
    expect(all.json().items.map((policy: { id: string }) => policy.id)).toEqual([high.id, off.id, low.id]);

    const enabled = await request({ method: "GET", url: `${POLICIES}?enabled=true`, key });
    expect(enabled.json().items.map((policy: { id: string }) => policy.id)).toEqual([high.id, low.id]);
    const disabled = await request({ method: "GET", url: `${POLICIES}?enabled=false`, key });
    expect(disabled.json().items.map((policy: { id: string }) => policy.id)).toEqual([off.id]);

    const page = await request({ method: "GET", url: `${POLICIES}?limit=2&page=1`, key });
    expect(page.json()).toMatchObject({ total: 3, limit: 2, has_more: true });
  });

  it("documents the routes in the OpenAPI description", async () => {
    const spec = (await app.inject({ method: "GET", url: "/openapi.json" })).json();
    expect(Object.keys(spec.paths["/api/v1/policies/{id}"])).toEqual(["get", "patch", "delete"]);
    expect(spec.paths["/api/v1/policies"].post.responses).toHaveProperty("201");
  });
});

describe("listForEvaluation", () => {
  it("returns enabled policies in priority order and sees this process's writes at once", async () => {
    const { organizationId, key } = await createOrgWithKey(t, "admin");
    expect(await service.listForEvaluation(organizationId)).toEqual([]);
    const created = (await create({ name: "fresh", effect: "deny", priority: 1 }, key)).json();
    await create({ name: "dormant", effect: "allow", enabled: false }, key);
    const policies = await service.listForEvaluation(organizationId);
    expect(policies.map((policy) => policy.id)).toEqual([created.id]);
    expect(await service.listForEvaluation(organizationId)).toBe(policies);
  });

  it("lets another replica see a change once its cache entry expires", async () => {
    const { organizationId, key } = await createOrgWithKey(t, "admin");
    let now = 1_000_000;
    const replica = new PolicyService(t.steward.database.db, { cacheTtlMs: 2000, now: () => now });
    expect(await replica.listForEvaluation(organizationId)).toEqual([]);
    await create({ name: "elsewhere", effect: "deny" }, key);
    now += 1999;
    expect(await replica.listForEvaluation(organizationId)).toEqual([]);
    now += 1;
    expect((await replica.listForEvaluation(organizationId)).map((policy) => policy.name)).toEqual([
      "elsewhere",
    ]);
  });
});

describe("errors", () => {
  it.each([
    [
      "a bad CIDR",
      [{ type: "ip_ranges", values: ["10.0.0.0/8", "10.0.0.300/8"] }],
      "conditions[0].values[1]",
    ],
    ["a bad HH:MM", [{ type: "time_range", start: "9am", end: "17:00" }], "conditions[0].start"],
    [
      "a bad time zone",
      [{ type: "time_range", start: "09:00", end: "17:00", timezone: "Europe/Atlantis" }],
      "conditions[0].timezone",
    ],
    ["an unknown condition type", [{ type: "weather", values: ["sunny"] }], "conditions[0].type"],
    ["an unknown condition key", [{ type: "roles", values: ["admin"], role: "x" }], "conditions[0].role"],
  ])("answers 400 naming the field for %s", async (_label, conditions, field) => {
    const response = await create({ name: "bad-conditions", effect: "allow", conditions });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.code).toBe("VALIDATION_ERROR");
    expect(fieldsOf(response.json())).toEqual([field]);
  });

  it("answers 400 with Cedar's message for bad Cedar", async () => {
    const response = await create({
      name: "bad-cedar",
      cedar: "permit(principal, action, resource) when { };",
    });
    expect(response.statusCode).toBe(400);
    const [error] = response.json().error.details.errors;
    expect(error.field).toBe("cedar");
    expect(error.message).toContain("`when` condition clause cannot be empty");
  });

  it("answers 400 naming effect when it disagrees with the Cedar policy, or is missing", async () => {
    const disagrees = await create({
      name: "disagrees",
      effect: "allow",
      cedar: "forbid(principal, action, resource);",
    });
    expect(fieldsOf(disagrees.json())).toEqual(["effect"]);
    expect(disagrees.json().error.details.errors[0].message).toContain("forbid");
    const missing = await create({ name: "no-effect" });
    expect(fieldsOf(missing.json())).toEqual(["effect"]);

    const cedar = (await create({ name: "cedar-effect-patch", cedar: ADMINS_CEDAR })).json();
    const patch = await request({
      method: "PATCH",
      url: `${POLICIES}/${cedar.id}`,
      payload: { effect: "deny" },
    });
    expect(patch.statusCode).toBe(400);
    expect(fieldsOf(patch.json())).toEqual(["effect"]);
  });

  it("answers 400 for Cedar with conditions, unknown fields and bad list parameters", async () => {
    const both = await create({
      name: "both",
      cedar: ADMINS_CEDAR,
      conditions: [{ type: "roles", values: ["a"] }],
    });
    expect(fieldsOf(both.json())).toEqual(["conditions"]);
    const conditionsPolicy = (await create({ ...officeHours, name: "switch-needs-empty" })).json();
    const toCedar = await request({
      method: "PATCH",
      url: `${POLICIES}/${conditionsPolicy.id}`,
      payload: { cedar: ADMINS_CEDAR },
    });
    expect(fieldsOf(toCedar.json())).toEqual(["conditions"]);
    const unknown = await create({ name: "unknown-field", effect: "allow", action: "invoke" });
    expect(fieldsOf(unknown.json())).toEqual(["action"]);
    for (const query of ["enabled=maybe", "limit=0", "page=0"]) {
      const response = await request({ method: "GET", url: `${POLICIES}?${query}` });
      expect(response.statusCode, query).toBe(400);
    }
  });

  it("answers 409 for a name already taken, on create and on rename", async () => {
    await create({ name: "taken", effect: "allow" });
    const duplicate = await create({ name: "taken", effect: "deny" });
    expect(duplicate.statusCode).toBe(409);
    expect(duplicate.json().error).toMatchObject({ code: "CONFLICT", details: { field: "name" } });
    const other = (await create({ name: "not-taken", effect: "allow" })).json();
    const rename = await request({
      method: "PATCH",
      url: `${POLICIES}/${other.id}`,
      payload: { name: "taken" },
    });
    expect(rename.statusCode).toBe(409);
  });

  it("answers 404 for an id that does not exist", async () => {
    for (const method of ["GET", "PATCH", "DELETE"] as const) {
      const response = await request({
        method,
        url: `${POLICIES}/pol_00000000000000000000000000`,
        ...(method === "PATCH" ? { payload: { priority: 1 } } : {}),
      });
      expect(response.statusCode, method).toBe(404);
      expect(response.json().error.code).toBe("NOT_FOUND");
    }
  });
});

describe("security", () => {
  it("answers 401 without a credential", async () => {
    const response = await request({ method: "GET", url: POLICIES, key: null });
    expect(response.statusCode).toBe(401);
  });

  it("answers 403 to viewers and developers on every route", async () => {
    const existing = (await create({ name: "guarded", effect: "allow" })).json();
    for (const role of ["viewer", "developer"]) {
      const key = await createKey(t, role);
      for (const [method, url, payload] of [
        ["POST", POLICIES, { name: `${role}-made`, effect: "allow" }],
        ["GET", POLICIES, undefined],
        ["GET", `${POLICIES}/${existing.id}`, undefined],
        ["PATCH", `${POLICIES}/${existing.id}`, { priority: 99 }],
        ["DELETE", `${POLICIES}/${existing.id}`, undefined],
      ] as const) {
        const response = await request({ method, url, key, ...(payload ? { payload } : {}) });
        expect(response.statusCode, `${role} ${method} ${url}`).toBe(403);
        expect(response.json().error.code).toBe("FORBIDDEN");
      }
    }
    expect((await request({ method: "GET", url: `${POLICIES}/${existing.id}` })).json()).toEqual(existing);
  });

  it("answers 404 for another organization's policy and changes nothing", async () => {
    const other = await createOrgWithKey(t, "admin");
    const theirs = (await create({ name: "their-policy", effect: "deny" }, other.key)).json();
    for (const [method, payload] of [
      ["GET", undefined],
      ["PATCH", { enabled: false }],
      ["DELETE", undefined],
    ] as const) {
      const response = await request({
        method,
        url: `${POLICIES}/${theirs.id}`,
        ...(payload ? { payload } : {}),
      });
      expect(response.statusCode, method).toBe(404);
    }
    const mine = (await request({ method: "GET", url: `${POLICIES}?limit=100` })).json();
    expect(mine.items.map((policy: { id: string }) => policy.id)).not.toContain(theirs.id);
    const still = await request({ method: "GET", url: `${POLICIES}/${theirs.id}`, key: other.key });
    expect(still.json()).toEqual(theirs);
  });
});

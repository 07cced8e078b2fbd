import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { eq } from "drizzle-orm";
import type { FastifyInstance, InjectOptions } from "fastify";
import { Webhook, WebhookVerificationError } from "standardwebhooks";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { registerAccessControl } from "../../src/auth/access-control.js";
import { ApiKeyService } from "../../src/auth/api-key.service.js";
import { createAuthenticator } from "../../src/auth/authenticator.js";
import { SecretBox } from "../../src/crypto/secret-box.js";
import type { Db } from "../../src/db/database.js";
import { type DeliveryRow, deliveries, deliveryEndpoints, externalAgents } from "../../src/db/schema.js";
import type { HttpSender } from "../../src/delivery/adapters/adapter.js";
import type { OutboxEvent, PreparedDelivery } from "../../src/delivery/delivery-target.js";
import { webhookRoutes } from "../../src/delivery/webhooks/webhook.routes.js";
import { WebhookService } from "../../src/delivery/webhooks/webhook.service.js";
import { WebhookEventOutbox } from "../../src/delivery/webhooks/webhook-outbox.js";
import { WebhookDeliveryTarget } from "../../src/delivery/webhooks/webhook-target.js";
import { createHttpServer } from "../../src/http/server.js";
import { newId } from "../../src/ids.js";
import { AddressGuard } from "../../src/invocation/address-guard.js";
import { createLogger } from "../../src/observability/logger.js";
import { startDnsServer, type TestDnsServer } from "../helpers/dns-server.js";
import { createKey, createOrgWithKey, startTestSteward, type TestSteward } from "../helpers/steward.js";

/**
 * The webhook subscription routes, the event outbox and the delivery target on a real
 * Steward database. The test Steward provides the migrated schema, organizations and
 * keys; the routes run on a server wired like src/app.ts, behind the default SSRF guard
 * (no private networks) resolving names with a local DNS server.
 */

let t: TestSteward;
let dns: TestDnsServer;
let app: FastifyInstance;
let db: Db;
let service: WebhookService;
let outbox: WebhookEventOutbox;
let target: WebhookDeliveryTarget;
const box = new SecretBox(randomBytes(32));
const logs: string[] = [];
/** The service's clock; real time unless a test sets it. */
let clock: number | undefined;

beforeAll(async () => {
  t = await startTestSteward("postgres");
  dns = await startDnsServer({
    "hooks.example.test": ["93.184.215.14"],
    "intranet.example.test": ["10.1.2.3"],
  });
  db = t.steward.database.db;
  const guard = new AddressGuard({ kind: "none" }, { dnsServers: [dns.address] });
  service = new WebhookService(db, box, guard, { now: () => clock ?? Date.now() });
  outbox = new WebhookEventOutbox(service);
  target = new WebhookDeliveryTarget(db, box);
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  app = await createHttpServer({
    logger: createLogger("debug", sink),
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
      await api.register(webhookRoutes(service));
    },
    { prefix: "/api/v1" },
  );
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await dns?.close();
  await t?.close();
});
beforeEach(() => {
  clock = undefined;
});

const WEBHOOKS = "/api/v1/webhooks";
const COMPLETED = "external_agent.invocation.completed";
const BUDGET = "external_agent.budget.warning";
const RATE_LIMIT = "external_agent.rate_limit.exceeded";
const HOOK_URL = "https://hooks.example.test/steward";
const DAY_MS = 86_400_000;

function request({ key, headers, ...options }: InjectOptions & { key?: string | null }) {
  const credential = key === undefined ? t.adminKey : key;
  return app.inject({
    ...options,
    headers: { ...(credential ? { authorization: `Bearer ${credential}` } : {}), ...headers },
  });
}

const create = (body: Record<string, unknown>, key?: string) =>
  request({ method: "POST", url: WEBHOOKS, payload: body, key });
const rotate = (id: string, body?: Record<string, unknown>, key?: string) =>
  request({
    method: "POST",
    url: `${WEBHOOKS}/${id}/rotate-secret`,
    key,
    ...(body ? { payload: body } : {}),
  });
const fieldsOf = (body: { error: { details?: { errors?: Array<{ field: string }> } } }) =>
  body.error.details?.errors?.map((error) => error.field) ?? [];
const maskOf = (secret: string) => `****${secret.slice(-4)}`;

async function auditEvents(resourceId: string): Promise<Array<{ action: string; details: unknown }>> {
  const { rows } = await t.steward.database.pool.query<{ action: string; details: unknown }>(
    "SELECT action, details FROM audit_events WHERE resource_id = $1 ORDER BY id",
    [resourceId],
  );
  return rows;
}

async function storedRow(id: string): Promise<string> {
  const { rows } = await t.steward.database.pool.query(
    "SELECT row_to_json(s)::text AS json FROM webhook_subscriptions s WHERE id = $1",
    [id],
  );
  return rows[0]?.json ?? "";
}

function event(organizationId: string, overrides: Partial<OutboxEvent> = {}): OutboxEvent {
  return {
    type: COMPLETED,
    organizationId,
    data: { invocation_id: "inv_x", status: "success", cost_usd: 0.01 },
    ...overrides,
  };
}

/** Publishes inside a transaction, as the invocation path does. */
const publish = (published: OutboxEvent, source = outbox) =>
  db.transaction((tx) => source.publish(tx, published));

async function deliveriesOf(organizationId: string): Promise<DeliveryRow[]> {
  return db
    .select()
    .from(deliveries)
    .where(eq(deliveries.organizationId, organizationId))
    .orderBy(deliveries.id);
}

describe("happy path", () => {
  it("creates a subscription and shows its secret in full only in that answer", async () => {
    const response = await create({ url: HOOK_URL, events: [COMPLETED, BUDGET], description: "ops" });
    expect(response.statusCode).toBe(201);
    const created = response.json();
    expect(created).toMatchObject({
      url: HOOK_URL,
      events: [COMPLETED, BUDGET],
      description: "ops",
      active: true,
      organization_id: "default",
      previous_secret_expires_at: null,
    });
    expect(created.id).toMatch(/^whk_[0-9a-z]{26}$/);
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);

    const read = await request({ method: "GET", url: `${WEBHOOKS}/${created.id}` });
    expect(read.json()).toEqual({ ...created, secret: maskOf(created.secret) });
    const listed = (await request({ method: "GET", url: `${WEBHOOKS}?limit=100` })).json();
    expect(listed.items.find((item: { id: string }) => item.id === created.id).secret).toBe(
      maskOf(created.secret),
    );

    const secretBody = created.secret.slice("whsec_".length, -4);
    expect(await storedRow(created.id)).not.toContain(secretBody);
    expect(JSON.stringify(await auditEvents(created.id))).not.toContain(secretBody);
    expect(logs.join("")).not.toContain(secretBody);
    expect(await auditEvents(created.id)).toEqual([
      { action: "webhook.created", details: { events: [COMPLETED, BUDGET], active: true } },
    ]);
  });

  it("updates url, events, description and active, keeping the secret", async () => {
    const created = (await create({ url: HOOK_URL, events: [COMPLETED] })).json();
    const patched = await request({
      method: "PATCH",
      url: `${WEBHOOKS}/${created.id}`,
      payload: {
        url: "http://hooks.example.test/v2",
        events: [RATE_LIMIT],
        description: "moved",
        active: false,
      },
    });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({
      url: "http://hooks.example.test/v2",
      events: [RATE_LIMIT],
      description: "moved",
      active: false,
      secret: maskOf(created.secret),
    });
    const cleared = await request({
      method: "PATCH",
      url: `${WEBHOOKS}/${created.id}`,
      payload: { description: null },
    });
    expect(cleared.json()).toMatchObject({ description: null, active: false });
    expect((await auditEvents(created.id)).map((entry) => entry.details)).toEqual([
      { events: [COMPLETED], active: true },
      { fields: ["active", "description", "events", "url"] },
      { fields: ["description"] },
    ]);
  });

  it("lists newest first with the standard envelope, filtered by active", async () => {
    const { key } = await createOrgWithKey(t, "admin");
    const first = (await create({ url: HOOK_URL, events: [COMPLETED] }, key)).json();
    const second = (await create({ url: HOOK_URL, events: [BUDGET], active: false }, key)).json();
    const third = (await create({ url: HOOK_URL, events: [RATE_LIMIT] }, key)).json();

    const all = await request({ method: "GET", url: WEBHOOKS, key });
    expect(all.json()).toMatchObject({ total: 3, page: 1, limit: 20, has_more: false });
    expect(all.json().items.map((item: { id: string }) => item.id)).toEqual([third.id, second.id, first.id]);
    const inactive = await request({ method: "GET", url: `${WEBHOOKS}?active=false`, key });
    expect(inactive.json().items.map((item: { id: string }) => item.id)).toEqual([second.id]);
    const page = await request({ method: "GET", url: `${WEBHOOKS}?limit=2&page=2`, key });
    expect(page.json()).toMatchObject({ total: 3, page: 2, limit: 2, has_more: false });
    expect(page.json().items.map((item: { id: string }) => item.id)).toEqual([first.id]);
  });

  it("rotates the secret: the new one shown once, the previous one signing for the overlap", async () => {
    const created = (await create({ url: HOOK_URL, events: [COMPLETED] })).json();
    clock = Date.parse("2030-01-01T00:00:00Z");
    const rotated = await rotate(created.id);
    expect(rotated.statusCode).toBe(200);
    const body = rotated.json();
    expect(body.secret).toMatch(/^whsec_/);
    expect(body.secret).not.toBe(created.secret);
    expect(body.previous_secret_expires_at).toBe("2030-01-02T00:00:00.000Z");

    const read = (await request({ method: "GET", url: `${WEBHOOKS}/${created.id}` })).json();
    expect(read).toMatchObject({
      secret: maskOf(body.secret),
      previous_secret_expires_at: body.previous_secret_expires_at,
    });
    clock += DAY_MS;
    const after = (await request({ method: "GET", url: `${WEBHOOKS}/${created.id}` })).json();
    expect(after.previous_secret_expires_at).toBeNull();

    const week = (await rotate(created.id, { overlap_seconds: 7 * 86_400 })).json();
    expect(week.previous_secret_expires_at).toBe(new Date(clock + 7 * DAY_MS).toISOString());
    const none = (await rotate(created.id, { overlap_seconds: 0 })).json();
    expect(none.previous_secret_expires_at).toBeNull();

    const secretBody = body.secret.slice("whsec_".length, -4);
    expect(await storedRow(created.id)).not.toContain(secretBody);
    expect(logs.join("")).not.toContain(secretBody);
    expect((await auditEvents(created.id)).map((entry) => entry.details)).toEqual([
      { events: [COMPLETED], active: true },
      { overlap_seconds: 86_400, previous_secret_expires_at: "2030-01-02T00:00:00.000Z" },
      { overlap_seconds: 604_800, previous_secret_expires_at: new Date(clock + 7 * DAY_MS).toISOString() },
      { overlap_seconds: 0, previous_secret_expires_at: null },
    ]);
  });

  it("deletes a subscription, cancelling its unsent deliveries and letting go of sent ones", async () => {
    const { organizationId, key } = await createOrgWithKey(t, "admin");
    const created = (await create({ url: HOOK_URL, events: [COMPLETED] }, key)).json();
    await publish(event(organizationId));
    await publish(event(organizationId));
    const [sent, unsent] = await deliveriesOf(organizationId);
    if (!sent || !unsent) throw new Error("expected two deliveries");
    await db.update(deliveries).set({ status: "delivered" }).where(eq(deliveries.id, sent.id));
    // Its endpoint had been paused, and a claim had parked the unsent delivery.
    await db.insert(deliveryEndpoints).values({
      endpoint: `webhook:${created.id}`,
      organizationId,
      failingSince: new Date(),
      lastFailureAt: new Date(),
      pausedAt: new Date(),
    });
    await db.update(deliveries).set({ parked: true }).where(eq(deliveries.id, unsent.id));

    const removed = await request({ method: "DELETE", url: `${WEBHOOKS}/${created.id}`, key });
    expect(removed.statusCode).toBe(204);
    expect(removed.body).toBe("");
    expect((await request({ method: "GET", url: `${WEBHOOKS}/${created.id}`, key })).statusCode).toBe(404);

    const after = await deliveriesOf(organizationId);
    expect(
      after.map(({ id, status, subscriptionId, lastError, parked }) => ({
        id,
        status,
        subscriptionId,
        lastError,
        parked,
      })),
    ).toEqual([
      { id: sent.id, status: "delivered", subscriptionId: null, lastError: null, parked: false },
      {
        id: unsent.id,
        status: "dead",
        subscriptionId: null,
        lastError: `webhook subscription ${created.id} was deleted`,
        parked: false,
      },
    ]);
    // The pause of an endpoint that is gone is gone too: nothing could ever lift it.
    expect(
      await db
        .select()
        .from(deliveryEndpoints)
        .where(eq(deliveryEndpoints.endpoint, `webhook:${created.id}`)),
    ).toEqual([]);
    expect(await auditEvents(created.id)).toEqual([
      { action: "webhook.created", details: { events: [COMPLETED], active: true } },
      { action: "webhook.deleted", details: { cancelled_deliveries: 1 } },
    ]);
  });

  it("documents the routes in the OpenAPI description", async () => {
    const spec = (await app.inject({ method: "GET", url: "/openapi.json" })).json();
    expect(Object.keys(spec.paths["/api/v1/webhooks/{id}"])).toEqual(["get", "patch", "delete"]);
    expect(spec.paths["/api/v1/webhooks"].post.responses).toHaveProperty("201");
    expect(spec.paths["/api/v1/webhooks/{id}/rotate-secret"].post.responses).toHaveProperty("200");
  });
});

describe("errors", () => {
  it.each([
    ["a HOOK_URL that does not parse", { url: "not a url" }, "url"],
    ["an ftp:// HOOK_URL", { url: "ftp://hooks.example.test/x" }, "url"],
    ["the cloud metadata address", { url: "http://169.254.169.254/latest/meta-data/" }, "url"],
    ["a name resolving to a private address", { url: "https://intranet.example.test/hook" }, "url"],
    ["a HOOK_URL with credentials", { url: "https://user:pw@hooks.example.test/" }, "url"],
    ["an unknown event type", { events: [COMPLETED, "external_agent.deleted"] }, "events[1]"],
    ["no event", { events: [] }, "events"],
    ["the same event twice", { events: [BUDGET, BUDGET] }, "events"],
    ["an unknown field", { secret: "whsec_mine" }, "secret"],
  ])("answers 400 naming the field for %s", async (_label, overrides, field) => {
    const response = await create({ url: HOOK_URL, events: [COMPLETED], ...overrides });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.code).toBe("VALIDATION_ERROR");
    expect(fieldsOf(response.json())).toEqual([field]);
  });

  it("answers 400 naming the missing fields", async () => {
    expect(fieldsOf((await create({})).json()).sort()).toEqual(["events", "url"]);
  });

  it("answers 400 for a bad PATCH or rotation and changes nothing", async () => {
    const created = (await create({ url: HOOK_URL, events: [COMPLETED] })).json();
    for (const [payload, field] of [
      [{ url: "http://169.254.169.254/" }, "url"],
      [{ events: [] }, "events"],
      [{ active: "yes" }, "active"],
    ] as const) {
      const response = await request({ method: "PATCH", url: `${WEBHOOKS}/${created.id}`, payload });
      expect(response.statusCode, JSON.stringify(payload)).toBe(400);
      expect(fieldsOf(response.json())).toEqual([field]);
    }
    for (const overlap of [-1, 7 * 86_400 + 1, 1.5]) {
      const response = await rotate(created.id, { overlap_seconds: overlap });
      expect(response.statusCode, String(overlap)).toBe(400);
      expect(fieldsOf(response.json())).toEqual(["overlap_seconds"]);
    }
    const read = (await request({ method: "GET", url: `${WEBHOOKS}/${created.id}` })).json();
    expect(read).toEqual({ ...created, secret: maskOf(created.secret) });
  });

  it("answers 404 for an id that does not exist", async () => {
    const missing = `${WEBHOOKS}/whk_00000000000000000000000000`;
    for (const [method, url, payload] of [
      ["GET", missing, undefined],
      ["PATCH", missing, { active: false }],
      ["DELETE", missing, undefined],
      ["POST", `${missing}/rotate-secret`, {}],
    ] as const) {
      const response = await request({ method, url, ...(payload ? { payload } : {}) });
      expect(response.statusCode, method).toBe(404);
      expect(response.json().error.code).toBe("NOT_FOUND");
    }
  });
});

describe("security", () => {
  it("answers 401 without a credential", async () => {
    expect((await request({ method: "GET", url: WEBHOOKS, key: null })).statusCode).toBe(401);
  });

  it("answers 403 to developers and viewers on every route", async () => {
    const existing = (await create({ url: HOOK_URL, events: [COMPLETED] })).json();
    for (const role of ["developer", "viewer"]) {
      const key = await createKey(t, role);
      for (const [method, url, payload] of [
        ["POST", WEBHOOKS, { url: HOOK_URL, events: [COMPLETED] }],
        ["GET", WEBHOOKS, undefined],
        ["GET", `${WEBHOOKS}/${existing.id}`, undefined],
        ["PATCH", `${WEBHOOKS}/${existing.id}`, { active: false }],
        ["DELETE", `${WEBHOOKS}/${existing.id}`, undefined],
        ["POST", `${WEBHOOKS}/${existing.id}/rotate-secret`, {}],
      ] as const) {
        const response = await request({ method, url, key, ...(payload ? { payload } : {}) });
        expect(response.statusCode, `${role} ${method} ${url}`).toBe(403);
        expect(response.json().error.code).toBe("FORBIDDEN");
      }
    }
    const read = (await request({ method: "GET", url: `${WEBHOOKS}/${existing.id}` })).json();
    expect(read).toEqual({ ...existing, secret: maskOf(existing.secret) });
  });

  it("answers 404 for another organization's subscription and changes nothing", async () => {
    const other = await createOrgWithKey(t, "admin");
    const theirs = (await create({ url: HOOK_URL, events: [COMPLETED] }, other.key)).json();
    for (const [method, url, payload] of [
      ["GET", `${WEBHOOKS}/${theirs.id}`, undefined],
      ["PATCH", `${WEBHOOKS}/${theirs.id}`, { active: false }],
      ["DELETE", `${WEBHOOKS}/${theirs.id}`, undefined],
      ["POST", `${WEBHOOKS}/${theirs.id}/rotate-secret`, {}],
    ] as const) {
      const response = await request({ method, url, ...(payload ? { payload } : {}) });
      expect(response.statusCode, `${method} ${url}`).toBe(404);
    }
    const mine = (await request({ method: "GET", url: `${WEBHOOKS}?limit=100` })).json();
    expect(mine.items.map((item: { id: string }) => item.id)).not.toContain(theirs.id);
    const still = await request({ method: "GET", url: `${WEBHOOKS}/${theirs.id}`, key: other.key });
    expect(still.json()).toEqual({ ...theirs, secret: maskOf(theirs.secret) });
  });
});

describe("WebhookEventOutbox", () => {
  it("queues one delivery per active subscription listing the event type", async () => {
    const { organizationId, key } = await createOrgWithKey(t, "admin");
    const other = await createOrgWithKey(t, "admin");
    const matching = (await create({ url: HOOK_URL, events: [BUDGET, COMPLETED] }, key)).json();
    const alsoMatching = (await create({ url: HOOK_URL, events: [COMPLETED] }, key)).json();
    await create({ url: HOOK_URL, events: [BUDGET, RATE_LIMIT] }, key);
    await create({ url: HOOK_URL, events: [COMPLETED], active: false }, key);
    await create({ url: HOOK_URL, events: [COMPLETED] }, other.key);
    const agentId = newId("externalAgent");
    await db.insert(externalAgents).values({
      id: agentId,
      organizationId,
      name: "billing-bot",
      platform: "slack",
      webhookUrl: "https://agent.example.test/invoke",
      authType: "none",
    });

    const at = Date.parse("2030-05-06T07:08:09.010Z");
    const clocked = new WebhookEventOutbox(service, () => at);
    const data = { invocation_id: "inv_1", external_agent_id: agentId, status: "success", cost_usd: 0.02 };
    await publish(event(organizationId, { externalAgentId: agentId, invocationId: "inv_1", data }), clocked);

    const queued = await deliveriesOf(organizationId);
    expect(queued.map((row) => row.subscriptionId).sort()).toEqual([matching.id, alsoMatching.id].sort());
    for (const row of queued) {
      expect(row.id).toMatch(/^dlv_[0-9a-z]{26}$/);
      expect(row).toMatchObject({
        target: "webhook",
        eventType: COMPLETED,
        externalAgentId: agentId,
        invocationId: "inv_1",
        platform: null,
        status: "pending",
        attempts: 0,
        payload: { type: COMPLETED, timestamp: "2030-05-06T07:08:09.010Z", data },
      });
    }
    expect(await deliveriesOf(other.organizationId)).toEqual([]);
  });

  it("queues nothing when the publishing transaction rolls back", async () => {
    const { organizationId, key } = await createOrgWithKey(t, "admin");
    await create({ url: HOOK_URL, events: [RATE_LIMIT] }, key);
    await expect(
      db.transaction(async (tx) => {
        await outbox.publish(tx, event(organizationId, { type: RATE_LIMIT }));
        throw new Error("the invocation failed");
      }),
    ).rejects.toThrow("the invocation failed");
    expect(await deliveriesOf(organizationId)).toEqual([]);
  });

  it("sees this process's changes at once", async () => {
    const { organizationId, key } = await createOrgWithKey(t, "admin");
    await publish(event(organizationId));
    const created = (await create({ url: HOOK_URL, events: [COMPLETED] }, key)).json();
    await publish(event(organizationId));
    await request({ method: "PATCH", url: `${WEBHOOKS}/${created.id}`, payload: { active: false }, key });
    await publish(event(organizationId));
    expect(await deliveriesOf(organizationId)).toHaveLength(1);
  });

  it("skips a subscription another replica deleted or deactivated while its cache is stale", async () => {
    const { organizationId, key } = await createOrgWithKey(t, "admin");
    const deleted = (await create({ url: HOOK_URL, events: [COMPLETED] }, key)).json();
    const deactivated = (await create({ url: HOOK_URL, events: [COMPLETED] }, key)).json();
    let now = 1_000_000;
    const replica = new WebhookService(db, box, { checkUrl: async () => null }, { now: () => now });
    const replicaOutbox = new WebhookEventOutbox(replica);
    expect(await replica.activeSubscriptions(db, organizationId)).toHaveLength(2);

    await request({ method: "DELETE", url: `${WEBHOOKS}/${deleted.id}`, key });
    await request({ method: "PATCH", url: `${WEBHOOKS}/${deactivated.id}`, payload: { active: false }, key });
    now += 1999;
    await publish(event(organizationId), replicaOutbox);
    expect(await deliveriesOf(organizationId)).toEqual([]);

    const created = (await create({ url: HOOK_URL, events: [COMPLETED] }, key)).json();
    await publish(event(organizationId), replicaOutbox);
    expect(await deliveriesOf(organizationId)).toEqual([]);
    now += 1;
    await publish(event(organizationId), replicaOutbox);
    expect((await deliveriesOf(organizationId)).map((row) => row.subscriptionId)).toEqual([created.id]);
  });
});

describe("WebhookEventOutbox racing a delete", () => {
  /** Waits until a statement containing `marker` is blocked on a row lock in this database. */
  async function blockedOnLock(marker: string): Promise<void> {
    for (let tries = 0; tries < 500; tries++) {
      const { rows } = await t.steward.database.pool.query<{ waiting: number }>(
        `SELECT count(*)::int AS waiting FROM pg_stat_activity
          WHERE wait_event_type = 'Lock' AND strpos(query, $1) > 0`,
        [marker],
      );
      if ((rows[0]?.waiting ?? 0) > 0) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(`no statement with ${marker} ever waited for a lock`);
  }

  it("leaves out a subscription whose delete commits while the publisher waits", async () => {
    const { organizationId, key } = await createOrgWithKey(t, "admin");
    const created = (await create({ url: HOOK_URL, events: [COMPLETED] }, key)).json();
    // Cached before the delete, so the publisher still tries this subscription.
    expect(await service.activeSubscriptions(db, organizationId)).toHaveLength(1);
    const deleter = await t.steward.database.pool.connect();
    try {
      await deleter.query("BEGIN");
      await deleter.query("SELECT id FROM webhook_subscriptions WHERE id = $1 FOR UPDATE", [created.id]);
      await deleter.query("DELETE FROM webhook_subscriptions WHERE id = $1", [created.id]);
      const publishing = publish(event(organizationId));
      await blockedOnLock("FOR KEY SHARE OF s");
      await deleter.query("COMMIT");
      await publishing;
    } finally {
      deleter.release();
    }
    expect(await deliveriesOf(organizationId)).toEqual([]);
  });

  it("cancels what a publisher queued before the delete got the subscription", async () => {
    const { organizationId, key } = await createOrgWithKey(t, "admin");
    const created = (await create({ url: HOOK_URL, events: [COMPLETED] }, key)).json();
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let queuedInTransaction = () => {};
    const queuedSignal = new Promise<void>((resolve) => {
      queuedInTransaction = resolve;
    });
    const publishing = db.transaction(async (tx) => {
      await outbox.publish(tx, event(organizationId));
      queuedInTransaction();
      await gate;
    });
    await queuedSignal;
    const deleting = request({ method: "DELETE", url: `${WEBHOOKS}/${created.id}`, key });
    await blockedOnLock("webhook_subscriptions");
    release();
    await publishing;
    expect((await deleting).statusCode).toBe(204);
    expect((await deliveriesOf(organizationId)).map((row) => [row.status, row.subscriptionId])).toEqual([
      ["dead", null],
    ]);
  });
});

describe("WebhookDeliveryTarget", () => {
  /** A subscription of a fresh organization with one queued delivery, as the worker claims it. */
  async function queued(): Promise<{
    subscription: { id: string; secret: string };
    delivery: DeliveryRow;
    key: string;
  }> {
    const { organizationId, key } = await createOrgWithKey(t, "admin");
    const subscription = (await create({ url: HOOK_URL, events: [BUDGET] }, key)).json();
    await publish(
      event(organizationId, {
        type: BUDGET,
        data: { scope: "organization", period: "month", spent: 80, limit: 100, threshold: 0.8 },
      }),
    );
    const [delivery] = await deliveriesOf(organizationId);
    if (!delivery) throw new Error("nothing queued");
    return { subscription, delivery, key };
  }

  function prepared(result: PreparedDelivery | { skip: string }): PreparedDelivery {
    if ("skip" in result) throw new Error(`skipped: ${result.skip}`);
    return result;
  }

  it("prepares a signed request that verifies with the subscription's secret", async () => {
    const { subscription, delivery } = await queued();
    const { payload } = prepared(await target.prepare(delivery));
    expect(payload.url).toBe(HOOK_URL);
    expect(payload.headers).toMatchObject({ "content-type": "application/json", "webhook-id": delivery.id });
    expect(payload.body).toBe(JSON.stringify(delivery.payload));
    expect(new Webhook(subscription.secret).verify(payload.body, payload.headers)).toEqual(delivery.payload);
  });

  it("signs with both secrets during a rotation's overlap and with the new one after it", async () => {
    const { subscription, delivery, key } = await queued();
    const during = (await rotate(subscription.id, undefined, key)).json();
    const overlapping = prepared(await target.prepare(delivery)).payload;
    expect(overlapping.headers["webhook-signature"]?.split(" ")).toHaveLength(2);
    expect(new Webhook(during.secret).verify(overlapping.body, overlapping.headers)).toEqual(
      delivery.payload,
    );
    expect(new Webhook(subscription.secret).verify(overlapping.body, overlapping.headers)).toEqual(
      delivery.payload,
    );

    // Rotated two hours ago with a one-hour overlap: the previous secret has stopped signing.
    clock = Date.now() - 2 * 3600_000;
    const after = (await rotate(subscription.id, { overlap_seconds: 3600 }, key)).json();
    const single = prepared(await target.prepare(delivery)).payload;
    expect(single.headers["webhook-signature"]?.split(" ")).toHaveLength(1);
    expect(new Webhook(after.secret).verify(single.body, single.headers)).toEqual(delivery.payload);
    expect(() => new Webhook(during.secret).verify(single.body, single.headers)).toThrow(
      WebhookVerificationError,
    );
  });

  it("skips a delivery whose subscription is inactive or deleted", async () => {
    const { subscription, delivery, key } = await queued();
    await request({
      method: "PATCH",
      url: `${WEBHOOKS}/${subscription.id}`,
      payload: { active: false },
      key,
    });
    expect(await target.prepare(delivery)).toEqual({ skip: "the webhook subscription is inactive" });
    expect(await target.prepare({ ...delivery, subscriptionId: null })).toEqual({
      skip: "the webhook subscription was deleted",
    });
    expect(await target.prepare({ ...delivery, subscriptionId: "whk_00000000000000000000000000" })).toEqual({
      skip: "the webhook subscription was deleted",
    });
  });

  describe("deliver", () => {
    let receiver: Server;
    let answer = 204;
    const received: Array<{ headers: Record<string, string>; body: string }> = [];

    beforeAll(async () => {
      receiver = createServer((req, res) => {
        let body = "";
        req.on("data", (chunk) => {
          body += chunk;
        });
        req.on("end", () => {
          received.push({ headers: req.headers as Record<string, string>, body });
          res.writeHead(answer, answer === 503 ? { "retry-after": "7" } : {}).end();
        });
      });
      await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    });
    afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));

    /** A plain HttpSender to the local receiver; the worker's goes through the SSRF guard. */
    const send: HttpSender = async (payload, timeoutMs) => {
      const response = await fetch(payload.url, {
        method: "POST",
        headers: payload.headers,
        body: payload.body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      return {
        statusCode: response.status,
        headers: Object.fromEntries(response.headers),
        body: await response.text(),
      };
    };

    it("posts the signed event and reads the answer", async () => {
      const { subscription, delivery } = await queued();
      const local = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      // Registration refuses loopback URLs; the stored URL is pointed at the receiver directly.
      await t.steward.database.pool.query("UPDATE webhook_subscriptions SET url = $1 WHERE id = $2", [
        local,
        subscription.id,
      ]);
      const ready = prepared(await target.prepare(delivery));
      answer = 204;
      expect(await ready.deliver(ready.payload, send, 5_000)).toEqual({
        delivered: true,
        retryable: false,
        statusCode: 204,
      });
      const seen = received.at(-1);
      if (!seen) throw new Error("nothing received");
      expect(new Webhook(subscription.secret).verify(seen.body, seen.headers)).toEqual(delivery.payload);

      answer = 503;
      expect(await ready.deliver(ready.payload, send, 5_000)).toMatchObject({
        delivered: false,
        retryable: true,
        statusCode: 503,
        retryAfterMs: 7000,
      });
    });
  });
});

describe("on the embedded database", () => {
  let embedded: TestSteward;
  beforeAll(async () => {
    embedded = await startTestSteward("embedded");
  });
  afterAll(() => embedded?.close());

  it("publishes, signs and deletes with one connection held by the publishing transaction", async () => {
    const edb = embedded.steward.database.db;
    const subscriptions = new WebhookService(edb, box, { checkUrl: async () => null });
    const context = { actor: { type: "system" as const, id: "test" } };
    const created = await subscriptions.create("default", { url: HOOK_URL, events: [RATE_LIMIT] }, context);
    await edb.transaction((tx) =>
      new WebhookEventOutbox(subscriptions).publish(tx, event("default", { type: RATE_LIMIT })),
    );
    const [delivery] = await edb.select().from(deliveries);
    if (!delivery) throw new Error("nothing queued");
    const result = await new WebhookDeliveryTarget(edb, box).prepare(delivery);
    if ("skip" in result) throw new Error(result.skip);
    expect(new Webhook(created.secret).verify(result.payload.body, result.payload.headers)).toEqual(
      delivery.payload,
    );
    await subscriptions.delete("default", created.id, context);
    expect(await edb.select({ status: deliveries.status }).from(deliveries)).toEqual([{ status: "dead" }]);
  });
});

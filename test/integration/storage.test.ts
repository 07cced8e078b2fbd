import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runMigrations } from "../../src/db/migrate.js";
import { SECRETS, slackAgent, telegramAgent } from "../helpers/agents.js";
import { type StorageKind, startTestSteward, type TestSteward } from "../helpers/steward.js";

/** The same storage behaviour, checked on PostgreSQL and on the embedded PGlite. */
describe.each<StorageKind>(["postgres", "embedded"])("storage on %s", (kind) => {
  let t: TestSteward;

  beforeAll(async () => {
    t = await startTestSteward(kind);
  });
  afterAll(async () => {
    await t?.close();
  });

  const create = (body: Record<string, unknown>) =>
    t.request({ method: "POST", url: "/api/v1/external-agents", payload: body });
  const list = (query: string) => t.request({ method: "GET", url: `/api/v1/external-agents?${query}` });
  const sql = async <T extends Record<string, unknown>>(text: string, params: unknown[] = []) =>
    (await t.steward.database.pool.query<T>(text, params)).rows;

  it("applies each migration once", async () => {
    const again = await runMigrations(t.steward.database.pool, t.steward.database.schema);
    expect(again.applied).toEqual([]);
    expect(again.alreadyApplied).toBeGreaterThan(0);
  });

  it("stores credentials only as ciphertext", async () => {
    const response = await create(slackAgent({ name: "cipher-check" }));
    expect(response.statusCode).toBe(201);
    const [row] = await sql<{ auth: string; platform: string }>(
      "SELECT auth_config::text AS auth, platform_config::text AS platform FROM external_agents WHERE id = $1",
      [response.json().id],
    );
    expect(row?.auth).toContain("$sealed");
    expect(row?.auth).not.toContain(SECRETS.clientSecret);
    expect(row?.platform).not.toContain(SECRETS.slackWebhook);
  });

  it("pages through 25 agents: page 3 of 10 holds the last 5", async () => {
    for (let i = 0; i < 25; i++) {
      const response = await create(
        telegramAgent({ name: `pager-${String(i).padStart(2, "0")}`, tags: ["pager"] }),
      );
      expect(response.statusCode).toBe(201);
    }
    const third = (await list("tag=pager&page=3&limit=10")).json();
    expect(third).toMatchObject({ total: 25, page: 3, limit: 10, has_more: false });
    expect(third.items).toHaveLength(5);
    const second = (await list("tag=pager&page=2&limit=10")).json();
    expect(second.has_more).toBe(true);
    // Newest first, and no agent appears on two pages.
    const first = (await list("tag=pager&page=1&limit=10")).json();
    const names = [...first.items, ...second.items, ...third.items].map(
      (agent: { name: string }) => agent.name,
    );
    expect(new Set(names).size).toBe(25);
    expect(names[0]).toBe("pager-24");
    expect(names[24]).toBe("pager-00");
  });

  it("filters by platform, status, tag and search", async () => {
    await create(
      slackAgent({ name: "filter-slack", tags: ["filters"], description: "Routes 100% of billing" }),
    );
    await create(telegramAgent({ name: "filter-telegram", tags: ["filters"], status: "inactive" }));
    const names = async (query: string) =>
      (await list(`tag=filters&${query}`)).json().items.map((agent: { name: string }) => agent.name);

    expect(await names("platform=slack")).toEqual(["filter-slack"]);
    expect(await names("status=inactive")).toEqual(["filter-telegram"]);
    expect(await names("search=TELEGRAM")).toEqual(["filter-telegram"]);
    expect(await names("search=100%25")).toEqual(["filter-slack"]);
    // "%" is a literal character, not a wildcard.
    expect(await names("search=0%25%20of%20b")).toEqual(["filter-slack"]);
    expect(await names("search=%25%25")).toEqual([]);
  });

  it("soft-deletes: the row stays, lists hide it, and its name can be reused", async () => {
    const created = (await create(slackAgent({ name: "short-lived" }))).json();
    expect(
      (await t.request({ method: "DELETE", url: `/api/v1/external-agents/${created.id}` })).statusCode,
    ).toBe(204);

    const [row] = await sql<{ status: string; deleted_at: Date | null }>(
      "SELECT status, deleted_at FROM external_agents WHERE id = $1",
      [created.id],
    );
    expect(row?.status).toBe("deleted");
    expect(row?.deleted_at).not.toBeNull();
    const visible = (await list("search=short-lived")).json();
    expect(visible.total).toBe(0);
    const deleted = (await list("search=short-lived&status=deleted")).json();
    expect(deleted.items.map((agent: { id: string }) => agent.id)).toEqual([created.id]);

    expect((await create(slackAgent({ name: "short-lived" }))).statusCode).toBe(201);
    expect((await create(slackAgent({ name: "short-lived" }))).statusCode).toBe(409);
  });

  it("records an audit event for each change, without credential values", async () => {
    const created = (await create(slackAgent({ name: "audited" }))).json();
    await t.request({
      method: "PATCH",
      url: `/api/v1/external-agents/${created.id}`,
      payload: { description: "x" },
    });
    await t.request({ method: "DELETE", url: `/api/v1/external-agents/${created.id}` });
    const events = await sql<{ action: string; request_id: string | null; details: string }>(
      "SELECT action, request_id, details::text AS details FROM audit_events WHERE resource_id = $1 ORDER BY id",
      [created.id],
    );
    expect(events.map((event) => event.action)).toEqual([
      "external_agent.created",
      "external_agent.updated",
      "external_agent.deleted",
    ]);
    for (const event of events) {
      expect(event.request_id).toMatch(/^req_/);
      expect(event.details).not.toContain(SECRETS.clientSecret);
    }
  });

  it("keeps every list filter and organization_id indexed", async () => {
    const indexes = await sql<{ indexdef: string }>(
      "SELECT indexdef FROM pg_indexes WHERE tablename = 'external_agents' AND schemaname = current_schema()",
    );
    const definitions = indexes.map((index) => index.indexdef).join("\n");
    expect(definitions).toMatch(/\(organization_id, status/);
    expect(definitions).toMatch(/\(organization_id, platform/);
    expect(definitions).toMatch(/gin \(tags\)/);
  });
});

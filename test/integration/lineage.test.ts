import { eq } from "drizzle-orm";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invocations } from "../../src/db/schema.js";
import { GENESIS_HASH, hashRecord } from "../../src/lineage/lineage-hash.js";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import { TEST_REDIS_URL } from "../helpers/services.js";
import {
  createKey,
  createOrgWithKey,
  invokeEnv,
  startTestSteward,
  type TestSteward,
} from "../helpers/steward.js";

/**
 * Lineage as a user or an auditor meets it: search, one record's five layers, the
 * hash chain and its verification, GDPR erasure and access, exports and the call graph.
 * Every describe block works in an organization of its own, so counts are exact.
 */

let t: TestSteward;
let agent: MockAgent;
let redis: Redis;
let redisPrefix: string;

beforeAll(async () => {
  const env = invokeEnv();
  redisPrefix = env.STEWARD_REDIS_PREFIX as string;
  t = await startTestSteward("postgres", env);
  agent = await startMockAgent();
  redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
});
afterAll(async () => {
  await t?.close();
  await agent?.close();
  await redis?.quit();
});

interface Org {
  id: string;
  key: string;
}

async function newOrg(): Promise<Org> {
  const { organizationId, key } = await createOrgWithKey(t, "admin");
  return { id: organizationId, key };
}

async function register(org: Org, overrides: Record<string, unknown> = {}): Promise<string> {
  const response = await t.request({
    method: "POST",
    url: "/api/v1/external-agents",
    key: org.key,
    payload: {
      name: `agent-${Math.random().toString(36).slice(2, 10)}`,
      platform: "custom_http",
      webhook_url: agent.url,
      auth_type: "bearer_token",
      auth_config: { token: "agent-bearer-token-7777" },
      budget_config: { cost_per_execution: 0.25 },
      ...overrides,
    },
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json().id as string;
}

const invoke = (org: Org, agentId: string, input: string, headers: Record<string, string> = {}) =>
  t.request({
    method: "POST",
    url: `/api/v1/external-agents/${agentId}/invoke`,
    key: org.key,
    payload: { input },
    headers,
  });

/** Invokes and expects a 200, answering the invocation id. */
async function call(
  org: Org,
  agentId: string,
  input: string,
  headers: Record<string, string> = {},
): Promise<string> {
  const response = await invoke(org, agentId, input, headers);
  expect(response.statusCode, response.body).toBe(200);
  return response.json().invocation_id as string;
}

const get = (key: string | null, url: string) => t.request({ method: "GET", url, key });

async function getJson(key: string, url: string) {
  const response = await get(key, url);
  expect(response.statusCode, response.body).toBe(200);
  return response.json();
}

const sql = async <T extends Record<string, unknown>>(text: string, params: unknown[] = []) =>
  (await t.steward.database.pool.query<T>(text, params)).rows;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A minimal RFC 4180 reader: quoted cells, doubled quotes, CRLF rows. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (char === '"') quoted = false;
      else cell += char;
    } else if (char === '"') quoted = true;
    else if (char === ",") {
      row.push(cell);
      cell = "";
    } else if (char === "\r" && text[i + 1] === "\n") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
      i++;
    } else cell += char;
  }
  if (cell !== "" || row.length > 0) rows.push([...row, cell]);
  return rows;
}

describe("searching records", () => {
  let org: Org;
  let agentA: string;
  let agentB: string;
  let mark: Date;
  const ids: string[] = [];
  let rateLimitedId: string;

  beforeAll(async () => {
    org = await newOrg();
    agentA = await register(org);
    agentB = await register(org, { rate_limit_config: { requests_per_minute: 1 } });
    ids.push(
      await call(org, agentA, "one", {
        "x-external-user-id": "u-1",
        "x-external-user-email": "ada@example.org",
        "x-external-system": "helpdesk",
      }),
    );
    ids.push(
      await call(org, agentA, "two", {
        "x-external-user-id": "u-2",
        "x-external-user-email": "bob@example.org",
        "x-external-system": "crm",
      }),
    );
    await sleep(5);
    mark = new Date();
    await sleep(5);
    ids.push(await call(org, agentA, "three", { "x-external-user-id": "u-1", "x-external-system": "crm" }));
    ids.push(
      await call(org, agentB, "four", { "x-external-user-id": "u-3", "x-external-system": "helpdesk" }),
    );
    const refused = await invoke(org, agentB, "five", {
      "x-external-user-id": "u-3",
      "x-external-system": "helpdesk",
    });
    expect(refused.statusCode, refused.body).toBe(429);
    rateLimitedId = refused.headers["x-invocation-id"] as string;
    ids.push(rateLimitedId);
  });

  const search = async (query: string) => getJson(org.key, `/api/v1/lineage${query ? `?${query}` : ""}`);
  const idsOf = (page: { items: Array<{ invocation_id: string }> }) =>
    page.items.map((item) => item.invocation_id);

  it("lists every call of the organization, newest first, in the pagination envelope", async () => {
    const page = await search("");
    expect(page).toMatchObject({ total: 5, page: 1, limit: 20, has_more: false });
    expect(idsOf(page)).toEqual([...ids].reverse());
  });

  it("pages through the records without overlap", async () => {
    const first = await search("limit=2&page=1");
    const second = await search("limit=2&page=2");
    const third = await search("limit=2&page=3");
    expect(first).toMatchObject({ total: 5, page: 1, limit: 2, has_more: true });
    expect(second).toMatchObject({ total: 5, page: 2, limit: 2, has_more: true });
    expect(third).toMatchObject({ total: 5, page: 3, limit: 2, has_more: false });
    expect([...idsOf(first), ...idsOf(second), ...idsOf(third)]).toEqual([...ids].reverse());
    const beyond = await search("limit=2&page=4");
    expect(beyond).toMatchObject({ items: [], total: 5, has_more: false });
  });

  it("records a refused call too, with its refusal and a place in the chain", async () => {
    const page = await search("status=rate_limited");
    expect(page.total).toBe(1);
    expect(page.items[0]).toMatchObject({
      invocation_id: rateLimitedId,
      status: "rate_limited",
      agent: { id: agentB },
      external_user: { id: "u-3" },
      response: { status: null, body: null },
      cost_usd: null,
      governance: { rate_limit: { allowed: false, limit: 1, remaining: 0 } },
      chain: { seq: 5, record_hash: expect.stringMatching(/^[0-9a-f]{64}$/) },
    });
    // Refused before the outbound step: the agent saw only the first call to B.
    expect(agent.requests.filter((request) => request.body.input === "five")).toHaveLength(0);
  });

  it.each([
    ["external_user_id=u-1", [0, 2]],
    ["external_user_email=bob%40example.org", [1]],
    ["external_system=crm", [1, 2]],
    ["external_system=helpdesk", [0, 3, 4]],
    ["status=success", [0, 1, 2, 3]],
    ["external_system=helpdesk&status=success", [0, 3]],
    ["external_user_id=nobody", []],
  ])("filters by %s", async (query, expected) => {
    const page = await search(query);
    expect(page.total).toBe(expected.length);
    expect(idsOf(page)).toEqual(expected.map((index) => ids[index]).reverse());
  });

  it("filters by agent", async () => {
    expect(idsOf(await search(`external_agent_id=${agentA}`))).toEqual(ids.slice(0, 3).reverse());
    expect(idsOf(await search(`external_agent_id=${agentB}`))).toEqual(ids.slice(3).reverse());
  });

  it("filters by time with from and to (inclusive)", async () => {
    const at = encodeURIComponent(mark.toISOString());
    expect(idsOf(await search(`from=${at}`))).toEqual(ids.slice(2).reverse());
    expect(idsOf(await search(`to=${at}`))).toEqual(ids.slice(0, 2).reverse());
    const page = await search(`from=${at}&to=${at}`);
    expect(page.total).toBe(0);
  });

  it("refuses a malformed date, an unknown filter and an oversized page", async () => {
    for (const query of ["from=yesterday", "colour=red", "limit=101", "page=0"]) {
      const response = await get(org.key, `/api/v1/lineage?${query}`);
      expect(response.statusCode, query).toBe(400);
      expect(response.json().error.code).toBe("VALIDATION_ERROR");
    }
  });

  it("shows nothing of another organization", async () => {
    const other = await newOrg();
    expect(await getJson(other.key, "/api/v1/lineage")).toMatchObject({ items: [], total: 0 });
    expect(await getJson(other.key, `/api/v1/lineage?external_agent_id=${agentA}`)).toMatchObject({
      total: 0,
    });
  });
});

describe("one record", () => {
  let org: Org;
  let agentId: string;
  let invocationId: string;

  beforeAll(async () => {
    org = await newOrg();
    agentId = await register(org);
    invocationId = await call(org, agentId, "what is on the roadmap", {
      traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "x-external-user-id": "u-7",
      "x-external-user-email": "grace@example.org",
      "x-external-user-name": "Grace",
      "x-external-user-role": "analyst",
      "x-external-system": "portal",
      "x-external-session-id": "sess-9",
      "x-external-trace-id": "ext-trace-1",
      "x-external-context": '{"tenant":"acme"}',
      "user-agent": "portal/2.1",
    });
  });

  it("shows the five layers: external user, external system, credential, agent and the call", async () => {
    const record = await getJson(org.key, `/api/v1/lineage/${invocationId}`);
    expect(record).toMatchObject({
      invocation_id: invocationId,
      organization_id: org.id,
      status: "success",
      // (1) external user
      external_user: { id: "u-7", email: "grace@example.org", name: "Grace", role: "analyst" },
      // (2) external system
      external_system: {
        system: "portal",
        session_id: "sess-9",
        trace_id: "ext-trace-1",
        context: { tenant: "acme" },
      },
      // (3) Steward credential
      credential: {
        type: "api_key",
        id: expect.stringMatching(/^key_/),
        organization_id: org.id,
        team: null,
      },
      // (4) agent as it was at the call
      agent: { id: agentId, name: expect.stringMatching(/^agent-/), endpoint: agent.url, version: 1 },
      // (5) the invocation
      trace: {
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
        span_id: expect.stringMatching(/^[0-9a-f]{16}$/),
        parent_span_id: "00f067aa0ba902b7",
        parent_invocation_id: null,
      },
      request: { user_agent: "portal/2.1", body: { input: "what is on the roadmap" } },
      response: { status: 200, body: { result: "echo: what is on the roadmap" } },
      error: null,
      duration_ms: expect.any(Number),
      estimated_cost: 0.25,
      cost_usd: 0.25,
      degraded: false,
      governance: { policy: { allowed: true }, rate_limit: { allowed: true }, budget: { allowed: true } },
      completed_at: expect.any(String),
      chain: { seq: 1, prev_hash: GENESIS_HASH, record_hash: expect.stringMatching(/^[0-9a-f]{64}$/) },
      redacted_at: null,
    });
    expect(org.key.startsWith(record.credential.api_key_prefix)).toBe(true);
    expect(record.request.ip).toEqual(expect.any(String));
  });

  it("is readable by developers and auditors, not by viewers", async () => {
    for (const role of ["developer", "auditor"]) {
      const key = await createKey(t, role, org.id);
      const response = await get(key, `/api/v1/lineage/${invocationId}`);
      expect(response.statusCode, role).toBe(200);
      expect((await get(key, "/api/v1/lineage")).statusCode, role).toBe(200);
    }
    const viewer = await createKey(t, "viewer", org.id);
    for (const url of [`/api/v1/lineage/${invocationId}`, "/api/v1/lineage", "/api/v1/lineage/verify"]) {
      const response = await get(viewer, url);
      expect(response.statusCode, url).toBe(403);
      expect(response.json().error.code).toBe("FORBIDDEN");
    }
  });

  it("answers 404 for another organization's record and for an unknown id, 401 without a key", async () => {
    const other = await newOrg();
    const theirs = await get(other.key, `/api/v1/lineage/${invocationId}`);
    expect(theirs.statusCode).toBe(404);
    expect(theirs.json().error.code).toBe("NOT_FOUND");
    expect((await get(org.key, "/api/v1/lineage/inv_doesnotexist")).statusCode).toBe(404);
    expect((await get(null, `/api/v1/lineage/${invocationId}`)).statusCode).toBe(401);
  });
});

describe("the hash chain", () => {
  /** A fresh organization with `count` successful calls, so each tamper case stands alone. */
  async function orgWithCalls(count: number): Promise<{ org: Org; ids: string[] }> {
    const org = await newOrg();
    const agentId = await register(org);
    const ids: string[] = [];
    for (let i = 0; i < count; i++)
      ids.push(await call(org, agentId, `call ${i}`, { "x-external-user-id": `u-${i}` }));
    return { org, ids };
  }

  const verify = (org: Org) => getJson(org.key, "/api/v1/lineage/verify");

  it("links each record to the one before, from the genesis hash", async () => {
    const { org, ids } = await orgWithCalls(4);
    const records = (await getJson(org.key, "/api/v1/lineage")).items.reverse();
    expect(records.map((record: { invocation_id: string }) => record.invocation_id)).toEqual(ids);
    let previous = GENESIS_HASH;
    for (const [index, record] of records.entries()) {
      expect(record.chain).toEqual({ seq: index + 1, prev_hash: previous, record_hash: expect.any(String) });
      previous = record.chain.record_hash;
    }
    expect(await verify(org)).toEqual({ valid: true, checked: 4, first_broken: null });
  });

  it("verifies an empty chain", async () => {
    expect(await verify(await newOrg())).toEqual({ valid: true, checked: 0, first_broken: null });
  });

  it("names exactly the record whose content was edited behind the service's back", async () => {
    const { org, ids } = await orgWithCalls(4);
    await sql("UPDATE invocations SET cost_usd = 999 WHERE id = $1", [ids[2]]);
    expect(await verify(org)).toEqual({
      valid: false,
      checked: 2,
      first_broken: { invocation_id: ids[2], chain_seq: 3, reason: "record hash does not match" },
    });
  });

  it("names a record whose identity was edited", async () => {
    const { org, ids } = await orgWithCalls(3);
    await sql("UPDATE invocations SET external_user_id = 'someone-else' WHERE id = $1", [ids[1]]);
    expect(await verify(org)).toMatchObject({
      valid: false,
      checked: 1,
      first_broken: {
        invocation_id: ids[1],
        chain_seq: 2,
        reason: "identity or body content does not match its hash",
      },
    });
  });

  it("names a record that was blanked to look redacted while its content was also changed", async () => {
    const { org, ids } = await orgWithCalls(3);
    await sql("UPDATE invocations SET redacted_at = now(), external_user_id = 'forged' WHERE id = $1", [
      ids[1],
    ]);
    expect(await verify(org)).toMatchObject({
      valid: false,
      first_broken: {
        invocation_id: ids[1],
        chain_seq: 2,
        reason: "redacted record still holds identity or body data",
      },
    });
  });

  it("names the place of a record deleted from the middle of the chain", async () => {
    const { org, ids } = await orgWithCalls(4);
    await sql("DELETE FROM invocations WHERE id = $1", [ids[1]]);
    const result = await verify(org);
    expect(result).toMatchObject({
      valid: false,
      checked: 1,
      first_broken: {
        invocation_id: null,
        chain_seq: 2,
        reason: expect.stringMatching(/^record 2 is missing/),
      },
    });
    // Where the chain picks up again, so an auditor can look at both sides of the gap.
    expect(result.first_broken.reason).toContain(ids[2]);
  });

  it("names several consecutive deleted records as one gap", async () => {
    const { org, ids } = await orgWithCalls(5);
    await sql("DELETE FROM invocations WHERE id = ANY($1)", [[ids[1], ids[2], ids[3]]]);
    expect(await verify(org)).toMatchObject({
      valid: false,
      checked: 1,
      first_broken: {
        invocation_id: null,
        chain_seq: 2,
        reason: expect.stringMatching(/^records 2 to 4 are missing/),
      },
    });
  });

  it("notices records deleted from the end of the chain", async () => {
    const { org, ids } = await orgWithCalls(3);
    await sql("DELETE FROM invocations WHERE id = $1", [ids[2]]);
    expect(await verify(org)).toEqual({
      valid: false,
      checked: 2,
      first_broken: {
        invocation_id: null,
        chain_seq: 3,
        reason: "records at the end of the chain are missing",
      },
    });
  });

  it("catches a forger who recomputes the edited record's own hash at the next record", async () => {
    const { org, ids } = await orgWithCalls(3);
    const { db } = t.steward.database;
    const [row] = await db
      .select()
      .from(invocations)
      .where(eq(invocations.id, ids[1] as string));
    if (!row) throw new Error("record not found");
    const forged = { ...row, costUsd: 0 };
    await db
      .update(invocations)
      .set({ costUsd: 0, ...hashRecord(forged, row.prevHash ?? "") })
      .where(eq(invocations.id, row.id));
    expect(await verify(org)).toMatchObject({
      valid: false,
      checked: 2,
      first_broken: {
        invocation_id: ids[2],
        chain_seq: 3,
        reason: "prev_hash does not match the previous record",
      },
    });
  });

  it("keeps consecutive places without gaps or duplicates under 30 concurrent calls", async () => {
    const org = await newOrg();
    const agentId = await register(org);
    const responses = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        invoke(org, agentId, `concurrent ${i}`, { "x-external-user-id": `c-${i}` }),
      ),
    );
    const answered = responses.filter((response) => response.statusCode === 200);
    expect(answered.length).toBeGreaterThan(0);
    const chained = await sql<{ id: string; chain_seq: number }>(
      "SELECT id, chain_seq FROM invocations WHERE organization_id = $1 AND chain_seq IS NOT NULL ORDER BY chain_seq",
      [org.id],
    );
    expect(chained.map((row) => row.chain_seq)).toEqual(
      Array.from({ length: chained.length }, (_, i) => i + 1),
    );
    expect(chained.map((row) => row.id)).toEqual(
      expect.arrayContaining(answered.map((response) => response.json().invocation_id)),
    );
    const page = await getJson(org.key, "/api/v1/lineage?limit=100");
    const seqs = page.items
      .map((item: { chain: { seq: number | null } }) => item.chain.seq)
      .filter((seq: number | null) => seq !== null)
      .sort((a: number, b: number) => a - b);
    expect(seqs).toEqual(chained.map((row) => row.chain_seq));
    expect(await verify(org)).toEqual({ valid: true, checked: chained.length, first_broken: null });
    const [head] = await sql<{ last_seq: number }>(
      "SELECT last_seq FROM lineage_chain_heads WHERE organization_id = $1",
      [org.id],
    );
    expect(head?.last_seq).toBe(chained.length);
  });

  // Reservation and settlement lock the same budget rows: in one order, or concurrent calls deadlock.
  it("answers every one of 30 concurrent calls to one agent, all in the chain", async () => {
    const org = await newOrg();
    const agentId = await register(org);
    const responses = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        invoke(org, agentId, `concurrent ${i}`, { "x-external-user-id": `c-${i}` }),
      ),
    );
    for (const response of responses) expect(response.statusCode, response.body).toBe(200);
    const page = await getJson(org.key, "/api/v1/lineage?limit=100");
    expect(page.total).toBe(30);
    const seqs = page.items
      .map((item: { chain: { seq: number } }) => item.chain.seq)
      .sort((a: number, b: number) => a - b);
    expect(seqs).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(await verify(org)).toEqual({ valid: true, checked: 30, first_broken: null });
  });

  it("never reports a sound chain as broken while calls are being appended", async () => {
    const org = await newOrg();
    const agentId = await register(org);
    let done = false;
    const calls = (async () => {
      try {
        for (let i = 0; i < 25; i++) await call(org, agentId, `live ${i}`);
      } finally {
        done = true;
      }
    })();
    const results: Array<{ valid: boolean }> = [];
    while (!done) results.push(await verify(org));
    await calls;
    expect(results.length).toBeGreaterThan(5);
    expect(results.filter((result) => !result.valid)).toEqual([]);
    expect(await verify(org)).toEqual({ valid: true, checked: 25, first_broken: null });
  });
});

describe("GDPR erasure and access", () => {
  const EMAIL = "erase.me@example.org";
  const USER_ID = "erase-me";
  let org: Org;
  let agentId: string;
  let erasedIds: string[];
  let keptIds: string[];

  const subjectUrl = (subject: string) => `/api/v1/lineage/users/${encodeURIComponent(subject)}`;
  const subjectHeaders = {
    "x-external-user-id": USER_ID,
    "x-external-user-email": EMAIL,
    "x-external-user-name": "Erase Me",
    "x-external-system": "helpdesk",
    "x-external-session-id": "sess-erase",
    "x-external-context": JSON.stringify({ contact: EMAIL }),
  };

  /** Every row of every table in Steward's schema, as text. */
  async function everyRowAsText(): Promise<Map<string, string[]>> {
    const tables = (
      await sql<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
      )
    ).map((row) => row.table_name);
    expect(tables).toEqual(
      expect.arrayContaining([
        "invocations",
        "audit_events",
        "budget_usage",
        "external_agents",
        "api_keys",
        "organizations",
        "policies",
        "lineage_chain_heads",
      ]),
    );
    const rows = new Map<string, string[]>();
    for (const table of tables) {
      const texts = await sql<{ text: string }>(`SELECT row_to_json(t)::text AS text FROM "${table}" t`);
      rows.set(
        table,
        texts.map((row) => row.text),
      );
    }
    return rows;
  }

  async function redisKeysAndValues(): Promise<string[]> {
    const found: string[] = [];
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${redisPrefix}*`, "COUNT", 500);
      cursor = next;
      for (const key of keys) {
        found.push(key);
        if ((await redis.type(key)) === "string") found.push(String(await redis.get(key)));
      }
    } while (cursor !== "0");
    return found;
  }

  beforeAll(async () => {
    org = await newOrg();
    // A per-user limit puts the external user into Redis counter keys.
    agentId = await register(org, { rate_limit_config: { per_user: { requests_per_minute: 100 } } });
    erasedIds = [];
    keptIds = [];
    for (let i = 0; i < 3; i++) {
      erasedIds.push(await call(org, agentId, `please send the report to ${EMAIL} (${i})`, subjectHeaders));
    }
    for (let i = 0; i < 2; i++) {
      keptIds.push(
        await call(org, agentId, `report for keep@example.org (${i})`, {
          "x-external-user-id": "keep-me",
          "x-external-user-email": "keep@example.org",
        }),
      );
    }
  });

  it("requires gdpr:redact to export or erase a subject", async () => {
    for (const role of ["developer", "auditor", "viewer"]) {
      const key = await createKey(t, role, org.id);
      expect((await get(key, `${subjectUrl(EMAIL)}/export`)).statusCode, role).toBe(403);
      const erase = await t.request({ method: "DELETE", url: subjectUrl(EMAIL), key });
      expect(erase.statusCode, role).toBe(403);
      expect(erase.json().error.code).toBe("FORBIDDEN");
    }
    expect((await getJson(org.key, `${subjectUrl(EMAIL)}/export`)).records).toHaveLength(3);
  });

  it("exports everything held about a subject, by email or by id", async () => {
    for (const subject of [EMAIL, USER_ID]) {
      const exported = await getJson(org.key, `${subjectUrl(subject)}/export`);
      expect(exported.subject).toBe(subject);
      expect(exported.records.map((record: { invocation_id: string }) => record.invocation_id)).toEqual(
        erasedIds,
      );
      expect(exported.records[0]).toMatchObject({
        external_user: { id: USER_ID, email: EMAIL, name: "Erase Me" },
        request: { body: { input: expect.stringContaining(EMAIL) } },
      });
    }
    const other = await newOrg();
    expect((await getJson(other.key, `${subjectUrl(EMAIL)}/export`)).records).toEqual([]);
  });

  it("erases the subject everywhere while the records and the chain remain", async () => {
    const before = await getJson(org.key, "/api/v1/lineage?limit=100");
    const keptBefore = await Promise.all(keptIds.map((id) => getJson(org.key, `/api/v1/lineage/${id}`)));
    expect((await everyRowAsText()).get("invocations")?.some((text) => text.includes(EMAIL))).toBe(true);
    const redisBefore = await redisKeysAndValues();
    expect(redisBefore.some((key) => key.includes("user:"))).toBe(true);

    // Another organization's erasure request reaches nothing here.
    const other = await newOrg();
    expect((await t.request({ method: "DELETE", url: subjectUrl(EMAIL), key: other.key })).json()).toEqual({
      redacted: 0,
    });

    const erased = await t.request({ method: "DELETE", url: subjectUrl(EMAIL), key: org.key });
    expect(erased.statusCode, erased.body).toBe(200);
    expect(erased.json()).toEqual({ redacted: 3 });

    // The email and the id are nowhere in the schema: not in a column, a JSON body or an audit event.
    for (const [table, texts] of await everyRowAsText()) {
      for (const text of texts) {
        expect(text.toLowerCase(), table).not.toContain(EMAIL);
        expect(text, table).not.toContain(USER_ID);
      }
    }
    // Nor in Redis, under this Steward's prefix.
    for (const entry of await redisKeysAndValues()) {
      expect(entry.toLowerCase()).not.toContain(EMAIL);
      expect(entry).not.toContain(USER_ID);
    }

    // The records stay, blank and marked, in their places in the chain.
    const after = await getJson(org.key, "/api/v1/lineage?limit=100");
    expect(after.total).toBe(before.total);
    for (const id of erasedIds) {
      const record = await getJson(org.key, `/api/v1/lineage/${id}`);
      const earlier = before.items.find((item: { invocation_id: string }) => item.invocation_id === id);
      expect(record).toMatchObject({
        invocation_id: id,
        status: "success",
        external_user: { id: null, email: null, name: null, role: null },
        external_system: { system: null, session_id: null, trace_id: null, context: null },
        request: { ip: null, user_agent: null, body: null },
        response: { status: 200, body: null },
        cost_usd: 0.25,
        chain: earlier.chain,
        redacted_at: expect.any(String),
      });
    }
    expect(await getJson(org.key, "/api/v1/lineage/verify")).toEqual({
      valid: true,
      checked: 5,
      first_broken: null,
    });

    // Other users' records are untouched.
    for (const [index, id] of keptIds.entries()) {
      expect(await getJson(org.key, `/api/v1/lineage/${id}`)).toEqual(keptBefore[index]);
    }

    // Access requests now find nothing, and a repeated erasure is a no-op.
    expect((await getJson(org.key, `${subjectUrl(EMAIL)}/export`)).records).toEqual([]);
    expect((await getJson(org.key, `${subjectUrl(USER_ID)}/export`)).records).toEqual([]);
    expect((await t.request({ method: "DELETE", url: subjectUrl(EMAIL), key: org.key })).json()).toEqual({
      redacted: 0,
    });

    // The erasure is audited without naming the person.
    const audits = await sql<{ details: unknown; resource_id: string | null }>(
      "SELECT details, resource_id FROM audit_events WHERE organization_id = $1 AND action = 'lineage.subject_redacted' ORDER BY id",
      [org.id],
    );
    expect(audits[0]).toEqual({ details: { records: 3 }, resource_id: null });
  });

  it("erases a call that is still in flight, and the chain still verifies once it completes", async () => {
    const inflight = await newOrg();
    const id = await register(inflight);
    const email = "in.flight@example.org";
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const seen = new Promise<void>((resolve) => {
      agent.answer(async (request) => {
        resolve();
        await gate;
        return { body: { result: `echo: ${String(request.body.input)}` } };
      });
    });
    try {
      const pending = invoke(inflight, id, `write to ${email}`, { "x-external-user-email": email });
      await seen;
      const erased = await t.request({ method: "DELETE", url: subjectUrl(email), key: inflight.key });
      expect(erased.json()).toEqual({ redacted: 1 });
      release();
      const response = await pending;
      expect(response.statusCode, response.body).toBe(200);
      // The answer of an erased call is not kept, so it is not handed on either.
      expect(response.json()).toMatchObject({ status: "success", output: null });
    } finally {
      release();
      agent.answer((request) => ({ body: { result: `echo: ${String(request.body.input)}` } }));
    }
    const rows = await sql<{ text: string }>(
      "SELECT row_to_json(t)::text AS text FROM invocations t WHERE organization_id = $1",
      [inflight.id],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]?.text).not.toContain(email);
    expect(await getJson(inflight.key, "/api/v1/lineage/verify")).toEqual({
      valid: true,
      checked: 1,
      first_broken: null,
    });
  });
});

describe("exports", () => {
  let org: Org;
  let auditor: string;
  let ids: string[];

  beforeAll(async () => {
    org = await newOrg();
    auditor = await createKey(t, "auditor", org.id);
    const agentId = await register(org);
    ids = [
      await call(org, agentId, "first", {
        "x-external-system": "=cmd()",
        "x-external-user-id": 'a,"b"',
        "x-external-user-email": "+1@example.org",
      }),
      await call(org, agentId, "second", { "x-external-system": "plain", "x-external-user-id": "-2" }),
      await call(org, agentId, "third", { "x-external-system": "plain", "x-external-user-id": "@u" }),
    ];
  });

  const exportAs = (query: string, key = auditor) => get(key, `/api/v1/lineage/export?${query}`);

  it("streams JSON Lines: one record per line, oldest first", async () => {
    const response = await exportAs("format=jsonl");
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toMatch(/^application\/x-ndjson/);
    expect(response.headers["content-disposition"]).toBe('attachment; filename="lineage.jsonl"');
    const lines = response.body.split("\n");
    expect(lines.at(-1)).toBe("");
    const records = lines.slice(0, -1).map((line) => JSON.parse(line));
    expect(records.map((record) => record.invocation_id)).toEqual(ids);
    expect(records[0]).toEqual(await getJson(org.key, `/api/v1/lineage/${ids[0]}`));
  });

  it("streams JSON as one array, the default format", async () => {
    for (const query of ["format=json", ""]) {
      const response = await exportAs(query);
      expect(response.statusCode).toBe(200);
      expect(response.headers["content-type"]).toMatch(/^application\/json/);
      const records = JSON.parse(response.body);
      expect(Array.isArray(records)).toBe(true);
      expect(records.map((record: { invocation_id: string }) => record.invocation_id)).toEqual(ids);
    }
    expect(JSON.parse((await exportAs("format=json&status=timeout")).body)).toEqual([]);
  });

  it("streams CSV with a header, escaped cells and defused formulas", async () => {
    const response = await exportAs("format=csv");
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toMatch(/^text\/csv/);
    const rows = parseCsv(response.body);
    const [header, ...records] = rows as [string[], ...string[][]];
    expect(header).toEqual([
      "invocation_id",
      "created_at",
      "completed_at",
      "status",
      "external_user_id",
      "external_user_email",
      "external_system",
      "credential_id",
      "api_key_prefix",
      "agent_id",
      "agent_name",
      "trace_id",
      "span_id",
      "parent_invocation_id",
      "response_status",
      "duration_ms",
      "cost_usd",
      "degraded",
      "error",
      "record_hash",
    ]);
    expect(records).toHaveLength(3);
    for (const record of records) expect(record).toHaveLength(header.length);
    const column = (record: string[] | undefined, name: string) => record?.[header.indexOf(name)];
    expect(records.map((record) => column(record, "invocation_id"))).toEqual(ids);
    // A cell a spreadsheet would run as a formula starts with a quote instead.
    expect(column(records[0], "external_system")).toBe("'=cmd()");
    expect(column(records[0], "external_user_email")).toBe("'+1@example.org");
    expect(column(records[1], "external_user_id")).toBe("'-2");
    expect(column(records[2], "external_user_id")).toBe("'@u");
    // Commas and quotes are quoted and doubled, not split.
    expect(column(records[0], "external_user_id")).toBe('a,"b"');
    expect(response.body).toContain(`,"a,""b""",`);
    expect(response.body).not.toMatch(/(^|,)=cmd/m);
    expect(column(records[0], "status")).toBe("success");
    expect(column(records[0], "cost_usd")).toBe("0.25");
    const record = await getJson(org.key, `/api/v1/lineage/${ids[0]}`);
    expect(column(records[0], "record_hash")).toBe(record.chain.record_hash);
  });

  it("applies the search filters to every format", async () => {
    const jsonl = (await exportAs("format=jsonl&external_system=plain")).body.trim().split("\n");
    expect(jsonl.map((line) => JSON.parse(line).invocation_id)).toEqual(ids.slice(1));
    const csv = parseCsv((await exportAs("format=csv&external_user_id=-2")).body);
    expect(csv).toHaveLength(2);
    const json = JSON.parse(
      (await exportAs(`format=json&external_system=${encodeURIComponent("=cmd()")}`)).body,
    );
    expect(json.map((record: { invocation_id: string }) => record.invocation_id)).toEqual([ids[0]]);
    expect((await exportAs("format=csv&status=timeout")).body.split("\r\n")).toHaveLength(2);
  });

  it("requires lineage:export and a known format", async () => {
    for (const role of ["developer", "viewer"]) {
      const key = await createKey(t, role, org.id);
      const response = await exportAs("format=jsonl", key);
      expect(response.statusCode, role).toBe(403);
    }
    expect((await exportAs("format=jsonl", org.key)).statusCode).toBe(200);
    expect((await exportAs("format=xml")).statusCode).toBe(400);
    const other = await newOrg();
    expect((await exportAs("format=jsonl", other.key)).body).toBe("");
  });
});

describe("the call graph", () => {
  let org: Org;
  let agentA: string;
  let agentB: string;
  let callA: string;
  let callB: string;
  let traceId: string;

  beforeAll(async () => {
    org = await newOrg();
    agentA = await register(org);
    agentB = await register(org);
    traceId = "0af7651916cd43dd8448eb211c80319c";
    callA = await call(org, agentA, "plan the trip", {
      traceparent: `00-${traceId}-b7ad6b7169203331-01`,
      "x-external-user-id": "u-1",
      "x-external-user-email": "ada@example.org",
      "x-external-system": "helpdesk",
    });
    // Agent A calls on through Steward, continuing the trace Steward handed it.
    const handedToA = agent.requests.at(-1)?.headers.traceparent as string;
    expect(handedToA).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    callB = await call(org, agentB, "book the hotel", { traceparent: handedToA });
  });

  it("links the nested call to the call that made it", async () => {
    const a = await getJson(org.key, `/api/v1/lineage/${callA}`);
    const b = await getJson(org.key, `/api/v1/lineage/${callB}`);
    expect(b.trace).toEqual({
      trace_id: traceId,
      span_id: expect.stringMatching(/^[0-9a-f]{16}$/),
      parent_span_id: a.trace.span_id,
      parent_invocation_id: callA,
    });
    expect(a.trace.parent_invocation_id).toBeNull();
  });

  it("lists a trace's records with the trace_id filter", async () => {
    const page = await getJson(org.key, `/api/v1/lineage?trace_id=${traceId}`);
    expect(page.items.map((record: { invocation_id: string }) => record.invocation_id).sort()).toEqual(
      [callA, callB].sort(),
    );
  });

  it("draws a trace: user → system → credential → agent A → agent B", async () => {
    const a = await getJson(org.key, `/api/v1/lineage/${callA}`);
    const graph = await getJson(org.key, `/api/v1/lineage/graph?trace_id=${traceId}`);
    const credential = `credential:${a.credential.id}`;
    expect(graph.nodes).toHaveLength(5);
    expect(graph.nodes).toEqual(
      expect.arrayContaining([
        { id: "external_user:u-1", type: "external_user", label: "ada@example.org" },
        { id: "external_system:helpdesk", type: "external_system", label: "helpdesk" },
        { id: credential, type: "credential", label: a.credential.api_key_prefix },
        { id: `agent:${agentA}`, type: "agent", label: a.agent.name },
        { id: `agent:${agentB}`, type: "agent", label: expect.any(String) },
      ]),
    );
    const edge = (from: string, to: string) =>
      graph.edges.find((item: { from: string; to: string }) => item.from === from && item.to === to);
    expect(graph.edges).toHaveLength(4);
    expect(edge("external_user:u-1", "external_system:helpdesk")).toMatchObject({
      invocations: 1,
      cost_usd: 0.25,
    });
    expect(edge("external_system:helpdesk", credential)).toMatchObject({ invocations: 1, cost_usd: 0.25 });
    expect(edge(credential, `agent:${agentA}`)).toMatchObject({ invocations: 1, cost_usd: 0.25 });
    expect(edge(`agent:${agentA}`, `agent:${agentB}`)).toEqual({
      from: `agent:${agentA}`,
      to: `agent:${agentB}`,
      invocations: 1,
      cost_usd: 0.25,
      duration_ms: expect.any(Number),
    });
  });

  it("draws an agent's graph with the agent that called it, not an anonymous caller", async () => {
    const graph = await getJson(org.key, `/api/v1/lineage/graph?external_agent_id=${agentB}`);
    expect(graph.edges).toEqual([
      {
        from: `agent:${agentA}`,
        to: `agent:${agentB}`,
        invocations: 1,
        cost_usd: 0.25,
        duration_ms: expect.any(Number),
      },
    ]);
    expect(graph.nodes.map((node: { id: string }) => node.id).sort()).toEqual(
      [`agent:${agentA}`, `agent:${agentB}`].sort(),
    );
  });

  it("adds up repeated calls on one edge", async () => {
    await call(org, agentA, "again", {
      "x-external-user-id": "u-1",
      "x-external-user-email": "ada@example.org",
      "x-external-system": "helpdesk",
    });
    const graph = await getJson(org.key, `/api/v1/lineage/graph?external_agent_id=${agentA}`);
    expect(graph.edges).toHaveLength(3);
    for (const edge of graph.edges) expect(edge).toMatchObject({ invocations: 2, cost_usd: 0.5 });
  });

  it("needs an agent or a trace, and shows nothing of another organization", async () => {
    const response = await get(org.key, "/api/v1/lineage/graph");
    expect(response.statusCode).toBe(400);
    expect(response.json().error.code).toBe("VALIDATION_ERROR");
    const other = await newOrg();
    expect(await getJson(other.key, `/api/v1/lineage/graph?trace_id=${traceId}`)).toEqual({
      nodes: [],
      edges: [],
    });
    const viewer = await createKey(t, "viewer", org.id);
    expect((await get(viewer, `/api/v1/lineage/graph?trace_id=${traceId}`)).statusCode).toBe(403);
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import {
  createKey,
  createOrgWithKey,
  invokeEnv,
  startTestSteward,
  type TestSteward,
} from "../helpers/steward.js";

/** /api/v1/approval-rules on a complete Steward, and the rules' effect on invoke. */

let t: TestSteward;
let agent: MockAgent;

beforeAll(async () => {
  t = await startTestSteward("postgres", invokeEnv());
  agent = await startMockAgent();
});
afterAll(async () => {
  await t?.close();
  await agent?.close();
});

const RULES = "/api/v1/approval-rules";

interface Org {
  organizationId: string;
  key: string;
}

const create = (org: Org, body: Record<string, unknown>) =>
  t.request({ method: "POST", url: RULES, key: org.key, payload: body });
const fieldsOf = (body: { error: { details?: { errors?: Array<{ field: string }> } } }) =>
  body.error.details?.errors?.map((error) => error.field) ?? [];

/** An agent with no approval_config whose every call costs 1. */
async function createAgent(org: Org, name = "payments"): Promise<string> {
  const response = await t.request({
    method: "POST",
    url: "/api/v1/external-agents",
    key: org.key,
    payload: {
      name,
      platform: "custom_http",
      webhook_url: agent.url,
      budget_config: { cost_per_execution: 1 },
    },
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json().id as string;
}

const invoke = (id: string, key: string, headers: Record<string, string> = {}) =>
  t.request({
    method: "POST",
    url: `/api/v1/external-agents/${id}/invoke`,
    key,
    headers,
    payload: { input: "refund order 7" },
  });

async function auditActions(resourceId: string): Promise<string[]> {
  const { rows } = await t.steward.database.pool.query<{ action: string }>(
    "SELECT action FROM audit_events WHERE resource_id = $1 ORDER BY id",
    [resourceId],
  );
  return rows.map((row) => row.action);
}

const costly = { cost_threshold: 0.5 };
const admins = { approver_roles: ["admin"] };

describe("happy path", () => {
  it("creates, lists, reads, updates and deletes a rule, auditing each change", async () => {
    const org = await createOrgWithKey(t, "admin");
    const agentId = await createAgent(org);
    const created = await create(org, {
      name: "big-spend",
      external_agent_ids: [agentId],
      triggers: costly,
      workflow: admins,
      trusted_users: ["ada@example.org"],
    });
    expect(created.statusCode, created.body).toBe(201);
    const rule = created.json();
    expect(rule).toMatchObject({
      id: expect.stringMatching(/^arl_[0-9a-z]{26}$/),
      organization_id: org.organizationId,
      name: "big-spend",
      enabled: true,
      external_agent_ids: [agentId],
      triggers: costly,
      workflow: admins,
      trusted_users: ["ada@example.org"],
    });

    const minimal = (await create(org, { name: "anything", triggers: {}, enabled: false })).json();
    expect(minimal).toMatchObject({
      external_agent_ids: [],
      workflow: {},
      trusted_users: [],
      enabled: false,
    });

    const all = (await t.request({ method: "GET", url: RULES, key: org.key })).json();
    expect(all).toMatchObject({ total: 2, page: 1, limit: 20, has_more: false });
    expect(all.items.map((item: { name: string }) => item.name)).toEqual(["anything", "big-spend"]);
    const enabled = (
      await t.request({ method: "GET", url: `${RULES}?enabled=true&limit=1`, key: org.key })
    ).json();
    expect(enabled).toMatchObject({ total: 1, items: [{ id: rule.id }] });

    const read = await t.request({ method: "GET", url: `${RULES}/${rule.id}`, key: org.key });
    expect(read.json()).toEqual(rule);

    const patched = await t.request({
      method: "PATCH",
      url: `${RULES}/${rule.id}`,
      key: org.key,
      payload: { enabled: false, external_agent_ids: [], triggers: { sensitive_data: true } },
    });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(patched.json()).toMatchObject({
      enabled: false,
      external_agent_ids: [],
      triggers: { sensitive_data: true },
      workflow: admins,
    });

    const deleted = await t.request({ method: "DELETE", url: `${RULES}/${rule.id}`, key: org.key });
    expect(deleted.statusCode).toBe(204);
    expect((await t.request({ method: "GET", url: `${RULES}/${rule.id}`, key: org.key })).statusCode).toBe(
      404,
    );
    expect(await auditActions(rule.id)).toEqual([
      "approval_rule.created",
      "approval_rule.updated",
      "approval_rule.deleted",
    ]);
  });
});

describe("errors", () => {
  it("answers 409 for a duplicate name, on create and on rename", async () => {
    const org = await createOrgWithKey(t, "admin");
    expect((await create(org, { name: "dup", triggers: costly })).statusCode).toBe(201);
    const again = await create(org, { name: "dup", triggers: {} });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe("CONFLICT");
    const other = (await create(org, { name: "other", triggers: {} })).json();
    const renamed = await t.request({
      method: "PATCH",
      url: `${RULES}/${other.id}`,
      key: org.key,
      payload: { name: "dup" },
    });
    expect(renamed.statusCode).toBe(409);
  });

  it("names the field of a bad trigger, workflow or agent id", async () => {
    const org = await createOrgWithKey(t, "admin");
    const agentId = await createAgent(org);
    const stranger = await createAgent(await createOrgWithKey(t, "admin"));
    const bad = await create(org, {
      name: "bad",
      external_agent_ids: [agentId, stranger, "agt_missing"],
      triggers: { payload_patterns: ["(unclosed"], rate: { max_calls: 1, window: "0s" } },
      workflow: { approver_users: ["k1"], required_approvals: 2 },
    });
    expect(bad.statusCode).toBe(400);
    expect(fieldsOf(bad.json()).sort()).toEqual([
      "external_agent_ids[1]",
      "external_agent_ids[2]",
      "triggers.payload_patterns[0]",
      "triggers.rate.window",
      "workflow.required_approvals",
    ]);
    const noApprover = await create(org, { name: "bad", triggers: costly, workflow: {} });
    expect(fieldsOf(noApprover.json())).toEqual(["workflow"]);

    const rule = (await create(org, { name: "good", triggers: costly })).json();
    const badPatch = await t.request({
      method: "PATCH",
      url: `${RULES}/${rule.id}`,
      key: org.key,
      payload: { external_agent_ids: [stranger], workflow: { timeout: "400d", approver_roles: ["admin"] } },
    });
    expect(badPatch.statusCode).toBe(400);
    expect(fieldsOf(badPatch.json()).sort()).toEqual(["external_agent_ids[0]", "workflow.timeout"]);
  });

  it("refuses a schema-invalid body and a deleted agent", async () => {
    const org = await createOrgWithKey(t, "admin");
    expect((await create(org, { name: "no-triggers" })).statusCode).toBe(400);
    expect((await create(org, { name: "extra", triggers: {}, colour: "red" })).statusCode).toBe(400);
    expect((await create(org, { name: "", triggers: {} })).statusCode).toBe(400);
    const agentId = await createAgent(org);
    await t.request({ method: "DELETE", url: `/api/v1/external-agents/${agentId}`, key: org.key });
    const gone = await create(org, { name: "gone", triggers: {}, external_agent_ids: [agentId] });
    expect(fieldsOf(gone.json())).toEqual(["external_agent_ids[0]"]);
  });
});

describe("security", () => {
  it("hides other organizations' rules behind 404", async () => {
    const owner = await createOrgWithKey(t, "admin");
    const intruder = await createOrgWithKey(t, "admin");
    const rule = (await create(owner, { name: "private", triggers: costly })).json();
    for (const method of ["GET", "PATCH", "DELETE"] as const) {
      const response = await t.request({
        method,
        url: `${RULES}/${rule.id}`,
        key: intruder.key,
        ...(method === "PATCH" ? { payload: { enabled: false } } : {}),
      });
      expect(response.statusCode, method).toBe(404);
    }
    expect((await t.request({ method: "GET", url: RULES, key: intruder.key })).json().total).toBe(0);
    expect(
      (await t.request({ method: "GET", url: `${RULES}/${rule.id}`, key: owner.key })).json().enabled,
    ).toBe(true);
  });

  it("needs policies:manage and a key", async () => {
    const org = await createOrgWithKey(t, "admin");
    const developer = await createKey(t, "developer", org.organizationId);
    expect((await create({ ...org, key: developer }, { name: "x", triggers: {} })).statusCode).toBe(403);
    expect((await t.request({ method: "GET", url: RULES, key: developer })).statusCode).toBe(403);
    expect((await t.request({ method: "GET", url: RULES, key: null })).statusCode).toBe(401);
  });
});

describe("the approval gate", () => {
  it("holds a call to an agent without approval_config when an org rule fires", async () => {
    const org = await createOrgWithKey(t, "admin");
    const developer = await createKey(t, "developer", org.organizationId);
    const id = await createAgent(org);
    expect((await invoke(id, developer)).statusCode).toBe(200);

    const rule = (await create(org, { name: "big-spend", triggers: costly, workflow: admins })).json();
    const held = await invoke(id, developer);
    expect(held.statusCode, held.body).toBe(202);
    expect(held.json().reasons).toEqual(["estimated cost 1 is above the threshold of 0.5"]);
    const approval = (
      await t.request({ method: "GET", url: `/api/v1/approvals/${held.json().approval_id}`, key: org.key })
    ).json();
    expect(approval.approver_roles).toEqual(["admin"]);
    const approved = await t.request({
      method: "POST",
      url: `/api/v1/approvals/${held.json().approval_id}/approve`,
      key: org.key,
      payload: {},
    });
    expect(approved.json().invocation_status).toBe("success");

    // Disabled: the rule no longer fires.
    await t.request({
      method: "PATCH",
      url: `${RULES}/${rule.id}`,
      key: org.key,
      payload: { enabled: false },
    });
    expect((await invoke(id, developer)).statusCode).toBe(200);
  });

  it("ignores a rule scoped to another agent, and a disabled rule", async () => {
    const org = await createOrgWithKey(t, "admin");
    const id = await createAgent(org, "payments");
    const other = await createAgent(org, "reports");
    await create(org, {
      name: "reports-only",
      external_agent_ids: [other],
      triggers: costly,
      workflow: admins,
    });
    await create(org, { name: "off", enabled: false, triggers: costly, workflow: admins });
    expect((await invoke(id, org.key)).statusCode).toBe(200);
    expect((await invoke(other, org.key)).statusCode).toBe(202);
  });

  it("holds a user's first call and calls past the rate, knowing the user by id or by email in any case", async () => {
    const org = await createOrgWithKey(t, "admin");
    const id = await createAgent(org);
    await create(org, {
      name: "newcomers",
      triggers: { first_invocation: true },
      workflow: admins,
    });
    await create(org, {
      name: "bursts",
      triggers: { rate: { max_calls: 2, window: "1h" } },
      workflow: admins,
    });
    const ada = { "x-external-user-email": "Ada@Example.org" };
    const first = await invoke(id, org.key, ada);
    expect(first.statusCode, first.body).toBe(202);
    expect(first.json().reasons).toEqual(["first call by this user to this agent"]);

    // The held call counts: the same user, whatever the case of her address, is known now.
    const second = await invoke(id, org.key, { "x-external-user-email": "ada@example.ORG" });
    expect(second.statusCode, second.body).toBe(200);
    const third = await invoke(id, org.key, {
      "x-external-user-id": "u-ada",
      "x-external-user-email": "ADA@example.org",
    });
    expect(third.statusCode, third.body).toBe(202);
    expect(third.json().reasons).toEqual(["more than 2 calls by this user within 1h"]);

    // Another user, and the same user at another agent, start afresh.
    expect((await invoke(id, org.key, { "x-external-user-id": "bob" })).json().reasons).toEqual([
      "first call by this user to this agent",
    ]);
    const other = await createAgent(org, "reports");
    expect((await invoke(other, org.key, ada)).json().reasons).toEqual([
      "first call by this user to this agent",
    ]);
    // By her id alone she is known through the one call that carried it: not a first call,
    // and one call in the hour is within the rate.
    expect((await invoke(id, org.key, { "x-external-user-id": "u-ada" })).statusCode).toBe(200);
  });

  it("lets a rule's trusted users through that rule only, and joins reasons of every rule", async () => {
    const org = await createOrgWithKey(t, "admin");
    const id = await createAgent(org);
    await create(org, {
      name: "a-costly",
      triggers: costly,
      workflow: admins,
      trusted_users: ["ada@example.org"],
    });
    const ada = { "x-external-user-email": "Ada@Example.org" };
    expect((await invoke(id, org.key, ada)).statusCode).toBe(200);

    await create(org, {
      name: "b-refunds",
      triggers: { payload_patterns: ["refund"], cost_threshold: 0.5 },
      workflow: { approver_roles: ["owner"] },
    });
    const held = await invoke(id, org.key, ada);
    expect(held.statusCode).toBe(202);
    expect(held.json().reasons).toEqual([
      "estimated cost 1 is above the threshold of 0.5",
      "input matches payload pattern /refund/",
    ]);
    const bob = await invoke(id, org.key, { "x-external-user-id": "bob" });
    // Both rules fire on the same cost: the reason appears once; the first rule by name decides.
    expect(bob.json().reasons).toEqual([
      "estimated cost 1 is above the threshold of 0.5",
      "input matches payload pattern /refund/",
    ]);
    const approval = (
      await t.request({ method: "GET", url: `/api/v1/approvals/${bob.json().approval_id}`, key: org.key })
    ).json();
    expect(approval.approver_roles).toEqual(["admin"]);
  });

  it("uses the agent's own workflow when its approval_config fired", async () => {
    const org = await createOrgWithKey(t, "admin");
    const id = await createAgent(org);
    const patched = await t.request({
      method: "PATCH",
      url: `/api/v1/external-agents/${id}`,
      key: org.key,
      payload: {
        approval_config: {
          triggers: { payload_patterns: ["refund"] },
          workflow: { approver_roles: ["owner"] },
        },
      },
    });
    expect(patched.statusCode, patched.body).toBe(200);
    await create(org, { name: "big-spend", triggers: costly, workflow: admins });
    const held = await invoke(id, org.key);
    expect(held.json().reasons).toEqual([
      "input matches payload pattern /refund/",
      "estimated cost 1 is above the threshold of 0.5",
    ]);
    const approval = (
      await t.request({ method: "GET", url: `/api/v1/approvals/${held.json().approval_id}`, key: org.key })
    ).json();
    expect(approval.approver_roles).toEqual(["owner"]);
  });
});

import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import {
  createKey,
  createOrgWithKey,
  invokeEnv,
  startTestSteward,
  type TestSteward,
} from "../helpers/steward.js";

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

interface Org {
  organizationId: string;
  key: string;
}

async function setup(
  workflow: Record<string, unknown> = {},
): Promise<{ org: Org; id: string; developer: string }> {
  const org = await createOrgWithKey(t, "admin");
  const developer = await createKey(t, "developer", org.organizationId);
  const response = await t.request({
    method: "POST",
    url: "/api/v1/external-agents",
    key: org.key,
    payload: {
      name: "payments",
      platform: "custom_http",
      webhook_url: agent.url,
      budget_config: { cost_per_execution: 1 },
      approval_config: {
        triggers: { cost_threshold: 0.5, sensitive_data: true },
        workflow: { approver_roles: ["admin"], ...workflow },
      },
    },
  });
  expect(response.statusCode, response.body).toBe(201);
  return { org, id: response.json().id as string, developer };
}

const invoke = (id: string, key: string, input = "refund order 7 to card 4111 1111 1111 1111") =>
  t.request({ method: "POST", url: `/api/v1/external-agents/${id}/invoke`, key, payload: { input } });
const decide = (
  approvalId: string,
  key: string,
  decision: "approve" | "reject",
  body: Record<string, unknown> = {},
) => t.request({ method: "POST", url: `/api/v1/approvals/${approvalId}/${decision}`, key, payload: body });

async function reserved(orgKey: string, id: string): Promise<number> {
  return (await t.request({ method: "GET", url: `/api/v1/external-agents/${id}/budget`, key: orgKey })).json()
    .monthly.reserved;
}

describe("a call that needs approval", () => {
  it("waits with 202, shows approvers a redacted summary, and runs once after two approvals", async () => {
    const { org, id, developer } = await setup({ required_approvals: 2 });
    const secondAdmin = await createKey(t, "admin", org.organizationId);
    const before = agent.requests.length;

    const held = await invoke(id, developer);
    expect(held.statusCode, held.body).toBe(202);
    const pending = held.json();
    expect(pending).toMatchObject({
      invocation_id: expect.stringMatching(/^inv_/),
      approval_id: expect.stringMatching(/^apr_/),
      status: "pending_approval",
      expires_at: expect.any(String),
    });
    expect(pending.reasons.join(" ")).toMatch(/cost/);
    expect(await reserved(org.key, id)).toBe(1);

    // Asking the same thing again gets the same pending request.
    const again = await invoke(id, developer);
    expect(again.json()).toMatchObject({
      invocation_id: pending.invocation_id,
      approval_id: pending.approval_id,
    });
    expect(await reserved(org.key, id)).toBe(1);

    const approval = (
      await t.request({ method: "GET", url: `/api/v1/approvals/${pending.approval_id}`, key: org.key })
    ).json();
    expect(approval.summary).not.toContain("4111");
    const listed = await t.request({
      method: "GET",
      url: `/api/v1/external-agents/${id}/approvals/pending`,
      key: developer,
    });
    expect(listed.json().items.map((item: { id: string }) => item.id)).toEqual([pending.approval_id]);

    expect((await decide(pending.approval_id, developer, "approve")).statusCode).toBe(403);
    const first = await decide(pending.approval_id, org.key, "approve");
    expect(first.json()).toMatchObject({ approvals: 1, invocation_status: "pending_approval" });
    expect((await decide(pending.approval_id, org.key, "approve")).statusCode).toBe(409);
    expect(agent.requests.length).toBe(before);

    const second = await decide(pending.approval_id, secondAdmin, "approve");
    expect(second.statusCode, second.body).toBe(200);
    expect(second.json()).toMatchObject({
      approval: { status: "approved" },
      approvals: 2,
      invocation_status: "success",
    });
    expect(agent.requests.length).toBe(before + 1);
    expect((await decide(pending.approval_id, secondAdmin, "approve")).statusCode).toBe(409);

    const record = (
      await t.request({ method: "GET", url: `/api/v1/invocations/${pending.invocation_id}`, key: org.key })
    ).json();
    expect(record).toMatchObject({ status: "success", cost_usd: 1 });
    expect(await reserved(org.key, id)).toBe(0);
  });

  it("requires a reason to reject, and a rejection releases the reservation", async () => {
    const { org, id, developer } = await setup();
    const pending = (await invoke(id, developer)).json();
    expect((await decide(pending.approval_id, org.key, "reject")).statusCode).toBe(400);
    const rejected = await decide(pending.approval_id, org.key, "reject", { reason: "not this card" });
    expect(rejected.json()).toMatchObject({
      approval: { status: "rejected" },
      invocation_status: "approval_rejected",
    });
    expect(await reserved(org.key, id)).toBe(0);
    const verified = await t.request({ method: "GET", url: "/api/v1/lineage/verify", key: org.key });
    expect(verified.json().valid).toBe(true);
  });

  it("refuses self-approval unless the workflow allows it", async () => {
    const { org, id } = await setup();
    const pending = (await invoke(id, org.key)).json();
    expect((await decide(pending.approval_id, org.key, "approve")).statusCode).toBe(403);

    const allowing = await setup({ allow_self_approval: true });
    const own = (await invoke(allowing.id, allowing.org.key)).json();
    expect((await decide(own.approval_id, allowing.org.key, "approve")).json().invocation_status).toBe(
      "success",
    );
  });

  it("answers 410 after expiry, and closes the call as expired", async () => {
    const { org, id, developer } = await setup();
    const pending = (await invoke(id, developer)).json();
    // Let the deadline pass by moving it, rather than by waiting.
    await t.steward.database.pool.query(
      "UPDATE approvals SET expires_at = now() - interval '1 second' WHERE id = $1",
      [pending.approval_id],
    );
    expect((await decide(pending.approval_id, org.key, "approve")).statusCode).toBe(410);
    const deadline = Date.now() + 10_000;
    let status = "";
    while (Date.now() < deadline && status !== "approval_expired") {
      status = (
        await t.request({ method: "GET", url: `/api/v1/invocations/${pending.invocation_id}`, key: org.key })
      ).json().status;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(status).toBe("approval_expired");
    expect(await reserved(org.key, id)).toBe(0);
  });

  it("lets a call below every trigger through, and refuses a bad rule with its field", async () => {
    const { org, id } = await setup();
    const cheap = await t.request({
      method: "PATCH",
      url: `/api/v1/external-agents/${id}/budget/config`,
      key: org.key,
      payload: { cost_per_execution: 0.1 },
    });
    expect(cheap.statusCode).toBe(200);
    expect((await invoke(id, org.key, "hello")).statusCode).toBe(200);

    const bad = await t.request({
      method: "PATCH",
      url: `/api/v1/external-agents/${id}`,
      key: org.key,
      payload: { approval_config: { triggers: { payload_patterns: ["(unclosed"] } } },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details.errors[0].field).toBe("approval_config.triggers.payload_patterns[0]");
  });

  it("tells webhook subscribers and the audit trail about every step", async () => {
    const { org, id, developer } = await setup();
    const receiver = await startMockAgent(() => ({ status: 204 }));
    try {
      const subscription = await t.request({
        method: "POST",
        url: "/api/v1/webhooks",
        key: org.key,
        payload: { url: receiver.url, events: ["approval.requested", "approval.approved"] },
      });
      expect(subscription.statusCode, subscription.body).toBe(201);
      const pending = (await invoke(id, developer)).json();
      await decide(pending.approval_id, org.key, "approve");

      const deadline = Date.now() + 10_000;
      while (receiver.requests.length < 2 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      // Each event carries a valid Standard Webhooks signature made with the subscription's secret.
      const webhook = new Webhook(subscription.json().secret);
      const events = receiver.requests.map(
        (request) =>
          webhook.verify(request.rawBody, request.headers as Record<string, string>) as {
            type: string;
            data: { approval_id: string };
          },
      );
      expect(events.map((event) => event.type).sort()).toEqual(["approval.approved", "approval.requested"]);
      expect(events.every((event) => event.data.approval_id === pending.approval_id)).toBe(true);

      const { rows } = await t.steward.database.pool.query(
        "SELECT action FROM audit_events WHERE resource_id = $1 ORDER BY id",
        [pending.approval_id],
      );
      expect(rows.map((row) => row.action)).toEqual([
        "approval.requested",
        "approval.approved_by",
        "approval.approved",
        "approval.executed",
      ]);
    } finally {
      await receiver.close();
    }
  });

  it("lets the escalation targets decide once the request is escalated", async () => {
    const { org, id, developer } = await setup({ escalation_after: "1h", escalation_to: ["owner"] });
    const owner = await createKey(t, "owner", org.organizationId);
    const pending = (await invoke(id, developer)).json();
    expect((await decide(pending.approval_id, owner, "approve")).statusCode).toBe(403);

    // Bring the escalation forward instead of waiting an hour.
    await t.steward.database.pool.query(
      "UPDATE approvals SET escalate_at = now() - interval '1 second' WHERE id = $1",
      [pending.approval_id],
    );
    const deadline = Date.now() + 10_000;
    let escalatedAt: string | null = null;
    while (!escalatedAt && Date.now() < deadline) {
      escalatedAt = (
        await t.request({ method: "GET", url: `/api/v1/approvals/${pending.approval_id}`, key: org.key })
      ).json().escalated_at;
      if (!escalatedAt) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(escalatedAt).not.toBeNull();
    const approved = await decide(pending.approval_id, owner, "approve");
    expect(approved.json()).toMatchObject({ invocation_status: "success" });
    const { rows } = await t.steward.database.pool.query(
      "SELECT count(*)::int AS n FROM audit_events WHERE resource_id = $1 AND action = 'approval.escalated'",
      [pending.approval_id],
    );
    expect(rows[0].n).toBe(1);
  });

  it("runs the call when the request times out and the workflow says on_timeout: approve", async () => {
    const { org, id, developer } = await setup({ on_timeout: "approve" });
    const before = agent.requests.length;
    const pending = (await invoke(id, developer)).json();
    await t.steward.database.pool.query(
      "UPDATE approvals SET expires_at = now() - interval '1 second' WHERE id = $1",
      [pending.approval_id],
    );
    const deadline = Date.now() + 10_000;
    let status = "";
    while (Date.now() < deadline && status !== "success") {
      status = (
        await t.request({ method: "GET", url: `/api/v1/invocations/${pending.invocation_id}`, key: org.key })
      ).json().status;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(status).toBe("success");
    expect(agent.requests.length).toBe(before + 1);
  });

  it("keeps pending requests across a restart, and still expires them", async () => {
    const { org, id, developer } = await setup();
    const pending = (await invoke(id, developer)).json();
    // A second Steward on the same database stands in for the restarted process.
    const restarted = await startTestSteward(
      "postgres",
      invokeEnv({ STEWARD_DB_SCHEMA: t.steward.database.schema, STEWARD_BOOTSTRAP_ADMIN_KEY: t.adminKey }),
    );
    try {
      const listed = await restarted.request({
        method: "GET",
        url: `/api/v1/external-agents/${id}/approvals/pending`,
        key: org.key,
      });
      expect(listed.json().items.map((item: { id: string }) => item.id)).toContain(pending.approval_id);
      await t.steward.database.pool.query(
        "UPDATE approvals SET expires_at = now() - interval '1 second' WHERE id = $1",
        [pending.approval_id],
      );
      const deadline = Date.now() + 10_000;
      let status = "";
      while (Date.now() < deadline && status !== "expired") {
        status = (
          await restarted.request({
            method: "GET",
            url: `/api/v1/approvals/${pending.approval_id}`,
            key: org.key,
          })
        ).json().status;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(status).toBe("expired");
    } finally {
      await restarted.close();
    }
  });

  it("posts the result to the callback_url given at invoke once the approved call has run", async () => {
    const { org, id, developer } = await setup();
    const receiver = await startMockAgent(() => ({ status: 204 }));
    try {
      const refused = await t.request({
        method: "POST",
        url: `/api/v1/external-agents/${id}/invoke`,
        key: developer,
        payload: { input: "pay out", callback_url: "ftp://example.org/x" },
      });
      expect(refused.statusCode).toBe(400);
      expect(refused.json().error.details.errors[0].field).toBe("callback_url");

      const held = await t.request({
        method: "POST",
        url: `/api/v1/external-agents/${id}/invoke`,
        key: developer,
        payload: { input: "pay out", callback_url: receiver.url },
      });
      expect(held.statusCode).toBe(202);
      await decide(held.json().approval_id, org.key, "approve");
      const deadline = Date.now() + 10_000;
      while (receiver.requests.length === 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      expect(receiver.requests[0]?.body).toMatchObject({
        invocation_id: held.json().invocation_id,
        status: "success",
        output: "echo: pay out",
      });
      expect(receiver.requests[0]?.headers["x-steward-delivery-id"]).toMatch(/^dlv_/);
    } finally {
      await receiver.close();
    }
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../helpers/eventually.js";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import { startSmtpServer, type TestSmtpServer } from "../helpers/smtp-server.js";
import { createKey, invokeEnv, startTestSteward, type TestSteward } from "../helpers/steward.js";

let t: TestSteward;
let agent: MockAgent;
let smtp: TestSmtpServer;

beforeAll(async () => {
  agent = await startMockAgent();
  smtp = await startSmtpServer();
  t = await startTestSteward(
    "postgres",
    invokeEnv({ STEWARD_SMTP_URL: smtp.url, STEWARD_PUBLIC_URL: "https://steward.example.org" }),
  );
});
afterAll(async () => {
  await t?.close();
  await agent?.close();
  await smtp?.close();
});

describe("approval e-mails", () => {
  it("writes to the approvers with the redacted request, then reminds them", async () => {
    const registered = await t.request({
      method: "POST",
      url: "/api/v1/external-agents",
      payload: {
        name: "refunds",
        platform: "custom_http",
        webhook_url: agent.url,
        approval_config: {
          triggers: { sensitive_data: true },
          workflow: {
            approver_roles: ["admin"],
            notify: ["email"],
            notify_emails: ["approver@example.org"],
            reminder_interval: "1h",
          },
        },
      },
    });
    expect(registered.statusCode, registered.body).toBe(201);
    const developer = await createKey(t, "developer");
    const held = await t.request({
      method: "POST",
      url: `/api/v1/external-agents/${registered.json().id}/invoke`,
      key: developer,
      payload: { input: "refund to card 4111 1111 1111 1111" },
    });
    expect(held.statusCode).toBe(202);
    const { approval_id: approvalId } = held.json();

    await until(() => smtp.messages.length >= 1);
    const [first] = smtp.messages;
    expect(first?.to).toEqual(["approver@example.org"]);
    expect(first?.text).toMatch(/approval needed/i);
    expect(first?.text).toContain(`https://steward.example.org/approvals/${approvalId}`);
    expect(first?.text).not.toContain("4111");

    // Once the first send is recorded, bring the reminder forward instead of waiting an hour.
    const notified = async () =>
      (
        await t.steward.database.pool.query(
          "SELECT 1 FROM audit_events WHERE resource_id = $1 AND action = 'approval.notified'",
          [approvalId],
        )
      ).rowCount === 1;
    await until(notified);
    await t.steward.database.pool.query("UPDATE approvals SET notify_at = now() WHERE id = $1", [approvalId]);
    await until(() => smtp.messages.length >= 2);
    expect(smtp.messages[1]?.text).toMatch(/Reminder/);
    // The scheduler records a send after the server took it.
    const steps = async () =>
      (
        await t.steward.database.pool.query<{ action: string }>(
          "SELECT action FROM audit_events WHERE resource_id = $1 AND action IN ('approval.notified', 'approval.reminded') ORDER BY id",
          [approvalId],
        )
      ).rows.map((row) => row.action);
    await until(async () => (await steps()).length >= 2);
    expect(await steps()).toEqual(["approval.notified", "approval.reminded"]);
  });

  it("asks for approval on the agent's own Slack channel, linking to the request", async () => {
    const slack = await startMockAgent(() => ({ status: 200, body: "ok" }));
    try {
      const registered = await t.request({
        method: "POST",
        url: "/api/v1/external-agents",
        payload: {
          name: "slack-held",
          platform: "slack",
          webhook_url: agent.url,
          platform_config: { webhook_url: slack.url, channel: "#approvals" },
          approval_config: {
            triggers: { payload_patterns: ["delete"] },
            workflow: { approver_roles: ["admin"], notify: ["slack"] },
          },
        },
      });
      expect(registered.statusCode, registered.body).toBe(201);
      const held = await t.request({
        method: "POST",
        url: `/api/v1/external-agents/${registered.json().id}/invoke`,
        payload: { input: "delete the staging database" },
      });
      expect(held.statusCode).toBe(202);
      await until(() => slack.requests.length >= 1);
      const message = JSON.stringify(slack.requests[0]?.body);
      expect(message).toContain("Waiting for approval");
      expect(message).toContain(`https://steward.example.org/approvals/${held.json().approval_id}`);
    } finally {
      await slack.close();
    }
  });
});

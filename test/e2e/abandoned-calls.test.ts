import { randomBytes } from "node:crypto";
import pg from "pg";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SecretBox } from "../../src/crypto/secret-box.js";
import { DutyLeases } from "../../src/db/duty-leases.js";
import { ADAPTERS } from "../../src/delivery/adapters/registry.js";
import { DeliveryStore } from "../../src/delivery/delivery-store.js";
import { InvocationOutbox } from "../../src/delivery/invocation-outbox.js";
import { WebhookService } from "../../src/delivery/webhooks/webhook.service.js";
import { WebhookEventOutbox } from "../../src/delivery/webhooks/webhook-outbox.js";
import { BudgetService } from "../../src/governance/budget/budget.service.js";
import { ABANDONED_MESSAGE, AbandonedCallSweeper } from "../../src/invocation/abandoned-calls.js";
import { InvocationJournal } from "../../src/invocation/invocation-journal.js";
import { InvocationStore } from "../../src/invocation/invocation-store.js";
import { until } from "../helpers/eventually.js";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import { freePort } from "../helpers/ports.js";
import { TEST_DATABASE_URL } from "../helpers/services.js";
import { invokeEnv, startTestSteward, type TestSteward } from "../helpers/steward.js";
import { type StewardProcess, spawnSteward, stewardEnvironment } from "../helpers/steward-process.js";

/**
 * A Steward process killed while it waits on an agent leaves its call `running`, with a
 * budget reservation. Another replica closes it once no agent timeout could still end
 * it: recorded as an error, the reservation given back, the Idempotency-Key free again.
 */
/** An agent at `url` whose calls each reserve 0.5 of a daily budget of 10. */
async function registerBudgetedAgent(t: TestSteward, name: string, url: string): Promise<string> {
  const registered = await t.request({
    method: "POST",
    url: "/api/v1/external-agents",
    payload: {
      name,
      platform: "custom_http",
      webhook_url: url,
      budget_config: { cost_per_execution: 0.5, max_daily_cost: 10 },
    },
  });
  expect(registered.statusCode, registered.body).toBe(201);
  return registered.json().id as string;
}

/** The agent's one call is one record in a chain that verifies, its reservation given back once. */
async function expectRecordedOnceAndReleased(t: TestSteward, agentId: string): Promise<void> {
  const verified = await t.request({ method: "GET", url: "/api/v1/lineage/verify" });
  expect(verified.json()).toMatchObject({ valid: true, checked: 1 });
  const budget = await t.request({ method: "GET", url: `/api/v1/external-agents/${agentId}/budget` });
  expect(budget.json().daily, budget.body).toMatchObject({ cost_used: 0, reserved: 0, invocations: 0 });
}

describe("calls abandoned by a killed process", () => {
  const { adminKey, schema, env, headers } = stewardEnvironment();
  let agent: MockAgent;
  let first: StewardProcess | undefined;
  let survivor: TestSteward | undefined;
  let database: pg.Client;

  beforeAll(async () => {
    agent = await startMockAgent(() => ({ hang: true }));
    database = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await database.connect();
  });
  afterAll(async () => {
    await first?.kill("SIGKILL");
    await survivor?.close();
    await agent?.close();
    await database?.end();
  });

  const reserved = async () =>
    (await database.query(`SELECT coalesce(sum(reserved), 0)::float AS n FROM ${schema}.budget_usage`))
      .rows[0].n as number;

  it("closes the call as an error, gives its reservation back and frees its Idempotency-Key", async () => {
    const port = await freePort();
    first = spawnSteward("serve", { ...env, PORT: String(port), LOG_LEVEL: "info" });
    await first.waitForOutput(/Server listening/);
    const base = `http://127.0.0.1:${port}/api/v1`;
    const registered = await fetch(`${base}/external-agents`, {
      method: "POST",
      headers,
      body: JSON.stringify({
        name: "slow-agent",
        platform: "custom_http",
        webhook_url: agent.url,
        budget_config: { cost_per_execution: 0.5, max_daily_cost: 10 },
      }),
    });
    expect(registered.status).toBe(201);
    const { id: agentId } = (await registered.json()) as { id: string };
    const body = JSON.stringify({ input: "never answered" });
    const keyed = { ...headers, "idempotency-key": "order-42" };
    void fetch(`${base}/external-agents/${agentId}/invoke`, { method: "POST", headers: keyed, body }).catch(
      () => "cut",
    );
    await until(() => agent.requests.length === 1);
    await first.kill("SIGKILL");

    const running = await database.query(`SELECT id FROM ${schema}.invocations WHERE status = 'running'`);
    expect(running.rows).toHaveLength(1);
    const invocationId = running.rows[0].id as string;
    // 0.5 held on the agent and on the organization, each for the day and the month.
    expect(await reserved()).toBe(2);

    // Another replica, told that no call may run longer than a second.
    survivor = await startTestSteward("postgres", { ...env, STEWARD_ABANDONED_CALL_AFTER_SECONDS: "1" });
    const t = survivor;
    const statusOf = async () =>
      (await t.request({ method: "GET", url: `/api/v1/invocations/${invocationId}`, key: adminKey })).json();
    await until(async () => (await statusOf()).status !== "running", 15_000);
    expect(await statusOf()).toMatchObject({ status: "error", error: ABANDONED_MESSAGE });
    expect(await reserved()).toBe(0);
    const verified = await t.request({ method: "GET", url: "/api/v1/lineage/verify", key: adminKey });
    expect(verified.json()).toMatchObject({ valid: true, checked: 1 });

    // The key is free: the caller's retry runs as a new call.
    agent.answer(() => ({ body: { result: "done" } }));
    const retried = await t.request({
      method: "POST",
      url: `/api/v1/external-agents/${agentId}/invoke`,
      key: adminKey,
      headers: { "idempotency-key": "order-42" },
      payload: { input: "never answered" },
    });
    expect(retried.statusCode, retried.body).toBe(200);
    expect(retried.json().invocation_id).not.toBe(invocationId);
  }, 90_000);

  it("keeps one record, one place in the chain and one settlement when a live call is swept too early", async () => {
    // The threshold below the agent's answer time (a misconfiguration): the sweep closes
    // the call while it is still waiting, and then the call itself finishes.
    const slowAgent = await startMockAgent(() => ({ delayMs: 3_000, body: { result: "late" } }));
    const early = await startTestSteward(
      "postgres",
      invokeEnv({ STEWARD_ABANDONED_CALL_AFTER_SECONDS: "1" }),
    );
    try {
      const agentId = await registerBudgetedAgent(early, "late-agent", slowAgent.url);

      const answer = await early.request({
        method: "POST",
        url: `/api/v1/external-agents/${agentId}/invoke`,
        payload: { input: "answered too late" },
      });
      // The call answers with what was recorded first: the sweep's verdict.
      expect(answer.statusCode, answer.body).toBe(503);
      expect(answer.json().error.message).toContain(ABANDONED_MESSAGE);
      const invocationId = answer.json().error.details.invocation_id as string;
      const stored = await early.request({ method: "GET", url: `/api/v1/invocations/${invocationId}` });
      expect(stored.json()).toMatchObject({ status: "error", error: ABANDONED_MESSAGE });

      // Given back once by the sweep, and not settled again by the call.
      await expectRecordedOnceAndReleased(early, agentId);
    } finally {
      await early.close();
      await slowAgent.close();
    }
  }, 60_000);

  it("closes a held call whose approval was decided long ago but never carried out", async () => {
    const t = await startTestSteward("postgres", invokeEnv({ STEWARD_ABANDONED_CALL_AFTER_SECONDS: "1" }));
    const reviewed = await startMockAgent(() => ({ body: { result: "never asked" } }));
    try {
      const agentId = await registerBudgetedAgent(t, "reviewed", reviewed.url);
      const rules = await t.request({
        method: "PATCH",
        url: `/api/v1/external-agents/${agentId}`,
        payload: {
          approval_config: { triggers: { cost_threshold: 0.1 }, workflow: { approver_roles: ["admin"] } },
        },
      });
      expect(rules.statusCode, rules.body).toBe(200);
      const hold = (input: string) =>
        t.request({ method: "POST", url: `/api/v1/external-agents/${agentId}/invoke`, payload: { input } });
      const decided = (await hold("decided")).json();
      const undecided = (await hold("undecided")).json();
      expect([decided.status, undecided.status]).toEqual(["pending_approval", "pending_approval"]);

      // Approved a minute ago by a process that stopped before it ran the call.
      await t.steward.database.pool.query(
        "UPDATE approvals SET status = 'approved', decided_at = now() - interval '1 minute' WHERE id = $1",
        [decided.approval_id],
      );
      const statusOf = async (id: string) =>
        (await t.request({ method: "GET", url: `/api/v1/invocations/${id}` })).json();
      await until(async () => (await statusOf(decided.invocation_id)).status !== "pending_approval", 15_000);
      expect(await statusOf(decided.invocation_id)).toMatchObject({
        status: "error",
        error: ABANDONED_MESSAGE,
      });
      expect(reviewed.requests).toHaveLength(0);
      // One call closed and given back; the other still waits for its approvers.
      expect((await statusOf(undecided.invocation_id)).status).toBe("pending_approval");
      const budget = await t.request({ method: "GET", url: `/api/v1/external-agents/${agentId}/budget` });
      expect(budget.json().daily).toMatchObject({ cost_used: 0, reserved: 0.5, invocations: 1 });
      const verified = await t.request({ method: "GET", url: "/api/v1/lineage/verify" });
      expect(verified.json()).toMatchObject({ valid: true, checked: 1 });
    } finally {
      await t.close();
      await reviewed.close();
    }
  }, 60_000);

  it("closes a call once when two sweeps find it in the same moment", async () => {
    const slowAgent = await startMockAgent(() => ({ delayMs: 2_000, body: { result: "late" } }));
    const t = await startTestSteward("postgres", invokeEnv());
    try {
      const agentId = await registerBudgetedAgent(t, "swept-twice", slowAgent.url);
      const answer = t.request({
        method: "POST",
        url: `/api/v1/external-agents/${agentId}/invoke`,
        payload: { input: "swept twice" },
      });
      await until(() => slowAgent.requests.length === 1);

      // Two passes over the same running call, as two replicas' sweeps would make: the
      // call reaches the journal's next batch twice.
      const db = t.steward.database.db;
      const webhookEvents = new WebhookEventOutbox(
        new WebhookService(db, new SecretBox(randomBytes(32)), { checkUrl: async () => null }),
      );
      const sweeper = new AbandonedCallSweeper({
        db,
        journal: new InvocationJournal(
          db,
          new InvocationStore(db),
          new BudgetService(db, webhookEvents),
          new InvocationOutbox(new DeliveryStore(db, 60_000), webhookEvents, ADAPTERS, () => {}),
        ),
        leases: new DutyLeases(db, pino({ level: "silent" })),
        logger: pino({ level: "silent" }),
        abandonAfterMs: 1,
        intervalMs: 60_000,
      });
      await new Promise((resolve) => setTimeout(resolve, 5));
      expect(await Promise.all([sweeper.sweep(), sweeper.sweep()])).toEqual([1, 1]);

      expect((await answer).statusCode).toBe(503);
      await expectRecordedOnceAndReleased(t, agentId);
    } finally {
      await t.close();
      await slowAgent.close();
    }
  }, 60_000);
});

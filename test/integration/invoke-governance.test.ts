import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import {
  createKey,
  createOrgWithKey,
  invokeEnv,
  registerAgent,
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

const register = (overrides: Record<string, unknown> = {}, key?: string) =>
  registerAgent(t, agent.url, overrides, key);

const invoke = (
  id: string,
  headers: Record<string, string> = {},
  key?: string,
  context?: Record<string, unknown>,
) =>
  t.request({
    method: "POST",
    url: `/api/v1/external-agents/${id}/invoke`,
    payload: { input: "hello", ...(context ? { context } : {}) },
    headers,
    key,
  });

const statuses = async (calls: Array<Promise<{ statusCode: number }>>) =>
  (await Promise.all(calls)).map((r) => r.statusCode);

describe("rate limits", () => {
  it("answers 429 after exactly N calls in a window, with the limit headers", async () => {
    const id = await register({ rate_limit_config: { requests_per_minute: 3, requests_per_hour: 100 } });
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const response = await invoke(id);
      expect(response.statusCode).toBe(200);
      expect(response.headers["x-ratelimit-limit"]).toBe("3");
      remaining.push(String(response.headers["x-ratelimit-remaining"]));
    }
    expect(remaining).toEqual(["2", "1", "0"]);
    const refused = await invoke(id);
    expect(refused.statusCode).toBe(429);
    expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
    expect(refused.json().error).toMatchObject({
      code: "RATE_LIMIT_EXCEEDED",
      details: { limit: 3, remaining: 0, window: "minute", reset_seconds: expect.any(Number) },
    });
  });

  it("counts each external user separately with per_user limits", async () => {
    const id = await register({
      rate_limit_config: { requests_per_minute: 100, per_user: { requests_per_minute: 2 } },
    });
    const alice = { "x-external-user-id": "alice" };
    expect(await statuses([invoke(id, alice), invoke(id, alice)])).toEqual([200, 200]);
    expect((await invoke(id, alice)).statusCode).toBe(429);
    expect((await invoke(id, { "x-external-user-id": "bob" })).statusCode).toBe(200);
  });

  it("applies the organization's default limits to agents without their own", async () => {
    const org = await createOrgWithKey(t, "admin");
    const settings = await t.request({
      method: "PATCH",
      url: "/api/v1/governance/settings",
      key: org.key,
      payload: { rate_limit_defaults: { requests_per_minute: 1 } },
    });
    expect(settings.statusCode).toBe(200);
    const id = await register({}, org.key);
    expect((await invoke(id, {}, org.key)).statusCode).toBe(200);
    expect((await invoke(id, {}, org.key)).statusCode).toBe(429);
  });
});

describe("budgets", () => {
  it("never spends a cent over a hard cap, with 50 concurrent calls", async () => {
    const id = await register({ budget_config: { cost_per_execution: 1, max_daily_cost: 10 } });
    const before = agent.requests.length;
    const results = await Promise.all(Array.from({ length: 50 }, () => invoke(id)));
    const codes = results.map((response) => response.statusCode);
    expect(codes.filter((code) => code === 200)).toHaveLength(10);
    expect(codes.filter((code) => code === 402)).toHaveLength(40);
    expect(agent.requests.length - before).toBe(10);
    const refusal = results.find((response) => response.statusCode === 402)?.json();
    expect(refusal.error).toMatchObject({
      code: "BUDGET_EXCEEDED",
      details: { budget_limit: 10, budget_remaining: 0, period: "day", reset_at: expect.any(String) },
    });
    const budget = (await t.request({ method: "GET", url: `/api/v1/external-agents/${id}/budget` })).json();
    expect(budget.daily).toMatchObject({
      cost_used: 10,
      reserved: 0,
      limit: 10,
      remaining: 0,
      limit_reached: true,
    });
  });

  it("refuses a call whose estimate is over the per-call cap, and counts monthly executions", async () => {
    const perCall = await register({
      budget_config: { cost_per_execution: 1, max_cost_per_invocation: 0.5 },
    });
    expect((await invoke(perCall)).json().error.details).toMatchObject({
      period: "invocation",
      budget_limit: 0.5,
    });

    const monthly = await register({ budget_config: { monthly_execution_limit: 2 } });
    expect(await statuses([invoke(monthly), invoke(monthly)])).toEqual([200, 200]);
    const third = await invoke(monthly);
    expect(third.statusCode).toBe(402);
    expect(third.json().error.details).toMatchObject({
      period: "month",
      budget_limit: 2,
      budget_remaining: 0,
    });
  });

  it("lets a soft cap pass and marks the call degraded", async () => {
    const id = await register({
      budget_config: { cost_per_execution: 1, max_daily_cost: 1, enforcement_mode: "soft" },
    });
    expect((await invoke(id)).statusCode).toBe(200);
    const over = await invoke(id);
    expect(over.statusCode).toBe(200);
    const record = (
      await t.request({ method: "GET", url: `/api/v1/invocations/${over.json().invocation_id}` })
    ).json();
    expect(record).toMatchObject({ degraded: true, degraded_reasons: ["budget_soft_limit_exceeded"] });
  });

  it("enforces the organization's cap across its agents", async () => {
    const org = await createOrgWithKey(t, "admin");
    await t.request({
      method: "PATCH",
      url: "/api/v1/governance/settings",
      key: org.key,
      payload: { budget_config: { max_daily_cost: 1 } },
    });
    const first = await register({ budget_config: { cost_per_execution: 0.6 } }, org.key);
    const second = await register({ budget_config: { cost_per_execution: 0.6 } }, org.key);
    expect((await invoke(first, {}, org.key)).statusCode).toBe(200);
    const refused = await invoke(second, {}, org.key);
    expect(refused.statusCode).toBe(402);
    const orgBudget = (
      await t.request({ method: "GET", url: "/api/v1/governance/budget", key: org.key })
    ).json();
    expect(orgBudget).toMatchObject({ scope: "organization", daily: { cost_used: 0.6, limit: 1 } });
  });

  it("records the warning threshold once per period", async () => {
    const id = await register({
      budget_config: { cost_per_execution: 1, max_daily_cost: 4, warning_threshold: 0.5 },
    });
    for (let i = 0; i < 4; i++) expect((await invoke(id)).statusCode).toBe(200);
    const { rows } = await t.steward.database.pool.query(
      "SELECT action FROM audit_events WHERE resource_id = $1 AND action LIKE 'budget.%' ORDER BY id",
      [id],
    );
    // Day and month both cross 50% (2 of 4) and then 90% (4 of 4): one event each, never repeated.
    expect(rows.map((row) => row.action).sort()).toEqual([
      "budget.degradation_threshold_crossed",
      "budget.warning_threshold_crossed",
    ]);
  });

  it("changes an agent's budget settings through PATCH /budget/config", async () => {
    const id = await register({ budget_config: { cost_per_execution: 1, max_daily_cost: 1 } });
    expect((await invoke(id)).statusCode).toBe(200);
    expect((await invoke(id)).statusCode).toBe(402);
    const patched = await t.request({
      method: "PATCH",
      url: `/api/v1/external-agents/${id}/budget/config`,
      payload: { max_daily_cost: 5 },
    });
    expect(patched.statusCode).toBe(200);
    expect(patched.json().budget_config).toMatchObject({ cost_per_execution: 1, max_daily_cost: 5 });
    expect((await invoke(id)).statusCode).toBe(200);
  });
});

describe("policies", () => {
  async function policy(key: string, body: Record<string, unknown>) {
    const response = await t.request({ method: "POST", url: "/api/v1/policies", key, payload: body });
    expect(response.statusCode, response.body).toBe(201);
    return response.json().id as string;
  }

  it("denies with 403 POLICY_DENIED naming the policy, and allows what no deny matches", async () => {
    const org = await createOrgWithKey(t, "admin");
    const id = await register({}, org.key);
    const denyId = await policy(org.key, {
      name: "no-untrusted-systems",
      effect: "deny",
      priority: 10,
      conditions: [{ type: "external_systems", values: ["untrusted"] }],
    });
    await policy(org.key, { name: "allow-all", effect: "allow", conditions: [] });

    const denied = await invoke(id, { "x-external-system": "untrusted" }, org.key);
    expect(denied.statusCode).toBe(403);
    expect(denied.json().error).toMatchObject({
      code: "POLICY_DENIED",
      details: {
        matched_policies: expect.arrayContaining([expect.objectContaining({ id: denyId, effect: "deny" })]),
      },
    });
    expect((await invoke(id, { "x-external-system": "helpdesk" }, org.key)).statusCode).toBe(200);
    const record = (
      await t.request({
        method: "GET",
        url: `/api/v1/lineage/${denied.json().error.details.invocation_id}`,
        key: org.key,
      })
    ).json();
    expect(record).toMatchObject({ status: "policy_denied", policy_ids: [denyId] });
  });

  it("denies when policies exist but none matches", async () => {
    const org = await createOrgWithKey(t, "admin");
    const id = await register({}, org.key);
    await policy(org.key, {
      name: "only-staging",
      effect: "allow",
      conditions: [{ type: "environments", values: ["staging"] }],
    });
    expect((await invoke(id, {}, org.key, { environment: "staging" })).statusCode).toBe(200);
    expect((await invoke(id, {}, org.key, { environment: "production" })).statusCode).toBe(403);
  });

  it("never counts a role the caller asserts in X-External-User-Role as a Steward role", async () => {
    const org = await createOrgWithKey(t, "admin");
    const developer = await createKey(t, "developer", org.organizationId);
    const id = await register({}, org.key);
    await policy(org.key, {
      name: "admins-only",
      effect: "allow",
      conditions: [{ type: "roles", values: ["admin"] }],
    });
    expect((await invoke(id, {}, org.key)).statusCode).toBe(200);
    expect((await invoke(id, { "x-external-user-role": "admin" }, developer)).statusCode).toBe(403);
  });

  it("evaluates Cedar policies", async () => {
    const org = await createOrgWithKey(t, "admin");
    const id = await register({ tags: ["finance"] }, org.key);
    await policy(org.key, { name: "allow-all", effect: "allow", conditions: [] });
    await policy(org.key, {
      name: "no-finance-in-production",
      cedar:
        'forbid(principal, action, resource) when { resource.tags.contains("finance") && context.environment == "production" };',
    });
    expect((await invoke(id, {}, org.key, { environment: "production" })).statusCode).toBe(403);
    expect((await invoke(id, {}, org.key, { environment: "staging" })).statusCode).toBe(200);
  });

  it("follows the organization's combining strategy", async () => {
    const org = await createOrgWithKey(t, "admin");
    const id = await register({}, org.key);
    await policy(org.key, { name: "deny-all", effect: "deny", conditions: [] });
    await policy(org.key, { name: "allow-all", effect: "allow", conditions: [] });
    expect((await invoke(id, {}, org.key)).statusCode).toBe(403);
    await t.request({
      method: "PATCH",
      url: "/api/v1/governance/settings",
      key: org.key,
      payload: { policy_combining: "allow_overrides" },
    });
    expect((await invoke(id, {}, org.key)).statusCode).toBe(200);
  });
});

describe("governance status", () => {
  it("shows budget, windows, policies and flags for an agent", async () => {
    const org = await createOrgWithKey(t, "admin");
    const id = await register(
      {
        rate_limit_config: { requests_per_minute: 5 },
        budget_config: { cost_per_execution: 2, max_monthly_cost: 10 },
      },
      org.key,
    );
    await invoke(id, {}, org.key);
    const status = await t.request({
      method: "GET",
      url: `/api/v1/external-agents/${id}/governance-status`,
      key: org.key,
    });
    expect(status.statusCode).toBe(200);
    expect(status.json()).toMatchObject({
      external_agent_id: id,
      rate_limits: { available: true, windows: [{ window: "minute", limit: 5, used: 1, remaining: 4 }] },
      policies: { combining: "deny_overrides", applicable: [] },
      pending_approvals: 0,
      degraded: { budget: false, rate_limiter: false },
    });
    const monthly = status.json().budget.agent.find((usage: { period: string }) => usage.period === "month");
    expect(monthly).toMatchObject({ cost_used: 2, limit: 10, remaining: 8, usage_percentage: 20 });
  });
});

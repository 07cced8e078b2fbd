import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCREENSHOT_DIR } from "../helpers/browser.js";
import { fitsWidth, PHONE, startDashboard, type TestDashboard, WAIT } from "../helpers/dashboard.js";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import { invokeEnv, registerAgent, type TestSteward } from "../helpers/steward.js";

/**
 * The governance dashboard and the lineage screens against a real Steward: agents that
 * report their cost, a budget that refuses, a rate limit and a policy that refuse, a
 * nested call, all made through the API with the identity headers a calling system sends.
 */
describe("dashboard: governance and lineage", () => {
  let dashboard: TestDashboard;
  let t: TestSteward;
  let planner: MockAgent;
  let others: MockAgent;
  const agents = { planner: "", booker: "", writer: "" };
  let adaCall: string;
  let graceCall: string;
  let keyPrefix: string;

  const ada = {
    "x-external-user-id": "u-ada",
    "x-external-user-email": "ada@example.org",
    "x-external-user-name": "Ada",
    "x-external-system": "helpdesk",
    "x-external-session-id": "sess-ada-1",
  };
  const grace = {
    "x-external-user-id": "u-grace",
    "x-external-user-email": "grace@example.org",
    "x-external-system": "helpdesk",
  };

  const TEST_TIMEOUT = 120_000;

  const invoke = async (agentId: string, headers: Record<string, string>, expected: number) => {
    const response = await t.request({
      method: "POST",
      url: `/api/v1/external-agents/${agentId}/invoke`,
      payload: { input: "plan the offsite" },
      headers,
    });
    expect(response.statusCode, response.body).toBe(expected);
    return (response.json().invocation_id ?? response.json().error.details.invocation_id) as string;
  };

  const api = async (method: "POST" | "PATCH", url: string, payload: Record<string, unknown>) => {
    const response = await t.request({ method, url, payload });
    expect(response.statusCode, response.body).toBeLessThan(300);
    return response.json();
  };

  beforeAll(async () => {
    dashboard = await startDashboard(invokeEnv());
    t = dashboard.steward;
    // The agents report what each call cost, as a metered model would.
    planner = await startMockAgent(() => ({
      body: { result: "planned", usage: { cost_usd: 0.4 } },
      delayMs: 30,
    }));
    others = await startMockAgent(() => ({ body: { result: "done", cost_usd: 0.15 }, delayMs: 15 }));

    await api("PATCH", "/api/v1/governance/settings", {
      budget_config: { max_daily_cost: 20, max_monthly_cost: 300 },
    });
    agents.planner = await registerAgent(t, planner.url, {
      name: "trip-planner",
      rate_limit_config: { requests_per_minute: 30, requests_per_hour: 500 },
      budget_config: { cost_per_execution: 0.25, max_daily_cost: 1, max_monthly_cost: 25 },
    });
    agents.booker = await registerAgent(t, others.url, { name: "hotel-booker" });
    agents.writer = await registerAgent(t, others.url, {
      name: "report-writer",
      rate_limit_config: { requests_per_day: 1 },
    });
    await api("POST", "/api/v1/policies", {
      name: "no-untrusted-systems",
      effect: "deny",
      priority: 10,
      conditions: [{ type: "external_systems", values: ["untrusted"] }],
    });
    await api("POST", "/api/v1/policies", { name: "allow-all", effect: "allow", conditions: [] });

    adaCall = await invoke(
      agents.planner,
      { ...ada, traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" },
      200,
    );
    // The planner calls the booker on through Steward, passing on the trace it was handed.
    await invoke(agents.booker, { traceparent: planner.requests.at(-1)?.headers.traceparent as string }, 200);
    graceCall = await invoke(agents.planner, grace, 200);
    // 0.80 spent of a 1.00 daily cap: the next 0.25 estimate does not fit.
    await invoke(agents.planner, grace, 402);
    await invoke(agents.writer, grace, 200);
    await invoke(agents.writer, grace, 429);
    await invoke(
      agents.planner,
      { "x-external-user-id": "u-mallory", "x-external-system": "untrusted" },
      403,
    );

    const record = await t.request({ method: "GET", url: `/api/v1/lineage/${adaCall}` });
    keyPrefix = record.json().credential.api_key_prefix as string;
  });
  afterAll(async () => {
    await dashboard?.close();
    await planner?.close();
    await others?.close();
  });

  it(
    "shows budget gauges, decisions by outcome and an agent's rate-limit windows",
    async () => {
      const page = await dashboard.signedInPage();
      await page.goto("/governance");
      await page.getByRole("heading", { name: "Governance", level: 1 }).waitFor();

      const budgetOf = (name: string) => page.getByRole("article", { name });
      const plannerToday = budgetOf("trip-planner").getByRole("meter", { name: "Today's spend" });
      await expect.poll(() => plannerToday.getAttribute("value"), WAIT).toBe("0.8");
      expect(await budgetOf("trip-planner").getByText("$0.80 of $1.00").first().isVisible()).toBe(true);
      await expect
        .poll(
          () => budgetOf("Organization").getByRole("meter", { name: "Today's spend" }).getAttribute("value"),
          WAIT,
        )
        .toBe("1.1");

      const decisions = page.getByRole("img", { name: /^Decisions over time/ });
      await expect.poll(() => decisions.getAttribute("aria-label"), WAIT).toContain("Allowed: 4");
      const summary = await decisions.getAttribute("aria-label");
      expect(summary).toContain("Rate limited: 1");
      expect(summary).toContain("Over budget: 1");
      expect(summary).toContain("Policy denied: 1");

      await page.getByLabel("Agent").selectOption({ label: "report-writer" });
      await expect
        .poll(() => decisions.getAttribute("aria-label"), WAIT)
        .toMatch(/Allowed: 1; Rate limited: 1; Over budget: 0/);
      const perDay = page.getByRole("row", { name: /Per day/ });
      await expect.poll(() => perDay.textContent(), WAIT).toContain("1 of 1");
      await page.getByLabel("Range").selectOption({ label: "Last hour, by minute" });
      await expect.poll(() => new URL(page.url()).search, WAIT).toContain("range=hour");
      await expect.poll(() => decisions.getAttribute("aria-label"), WAIT).toContain("Allowed: 1");

      await page.getByLabel("Agent").selectOption({ label: "trip-planner" });
      await page.getByLabel("Range").selectOption({ label: "Last 24 hours, by hour" });
      await expect
        .poll(() => decisions.getAttribute("aria-label"), WAIT)
        .toMatch(/Allowed: 2; Rate limited: 0; Over budget: 1/);
      await expect
        .poll(() => page.getByRole("row", { name: /Per minute/ }).textContent(), WAIT)
        .toContain("of 30");
      await page.screenshot({ path: join(SCREENSHOT_DIR, "governance.png"), fullPage: true });
      await page.context().close();

      const phone = await dashboard.signedInPage({ viewport: PHONE });
      await phone.goto("/governance");
      await phone.getByRole("heading", { name: "Governance", level: 1 }).waitFor();
      await phone.getByRole("img", { name: /^Decisions over time/ }).waitFor();
      expect(await phone.getByLabel("Agent").isVisible()).toBe(true);
      await expect.poll(() => fitsWidth(phone), WAIT).toBe(true);
      await phone.context().close();
    },
    TEST_TIMEOUT,
  );

  it(
    "lists, searches, verifies and exports lineage records",
    async () => {
      const page = await dashboard.signedInPage();
      await page.goto("/lineage");
      await page.getByRole("heading", { name: "Lineage", level: 1 }).waitFor();

      await expect
        .poll(() => page.getByRole("status").filter({ hasText: "Chain intact" }).count(), WAIT)
        .toBe(1);
      await expect
        .poll(() => page.getByText("All 7 records in the hash chain verify.").count(), WAIT)
        .toBe(1);
      const rows = page.getByRole("table").getByRole("row");
      await expect.poll(() => rows.count(), WAIT).toBe(8);
      expect(await page.getByRole("link", { name: adaCall }).count()).toBe(1);
      expect(await page.getByText("7 in all").count()).toBe(1);
      await page.screenshot({ path: join(SCREENSHOT_DIR, "lineage.png"), fullPage: true });

      await page.getByLabel("External user").fill("ada@example.org");
      await page.getByRole("button", { name: "Search" }).click();
      await expect.poll(() => rows.count(), WAIT).toBe(2);
      expect(await page.getByRole("link", { name: adaCall }).count()).toBe(1);
      expect(await page.getByRole("link", { name: graceCall }).count()).toBe(0);
      expect(new URL(page.url()).searchParams.get("user")).toBe("ada@example.org");

      const [download] = await Promise.all([
        page.waitForEvent("download"),
        page.getByRole("button", { name: "Export as CSV" }).click(),
      ]);
      expect(download.suggestedFilename()).toBe("lineage.csv");
      const csv = await readFile((await download.path()) as string, "utf8");
      const lines = csv.trim().split("\r\n");
      expect(lines[0]).toMatch(/^invocation_id,created_at,/);
      expect(lines).toHaveLength(2);
      expect(lines[1]).toContain(adaCall);
      expect(lines[1]).toContain("ada@example.org");

      const [json] = await Promise.all([
        page.waitForEvent("download"),
        page.getByRole("button", { name: "Export as JSON", exact: true }).click(),
      ]);
      const exported = JSON.parse(await readFile((await json.path()) as string, "utf8")) as Array<{
        invocation_id: string;
      }>;
      expect(exported.map((record) => record.invocation_id)).toEqual([adaCall]);
      await page.context().close();

      const phone = await dashboard.signedInPage({ viewport: PHONE });
      await phone.goto("/lineage");
      await phone.getByRole("heading", { name: "Lineage", level: 1 }).waitFor();
      await phone.getByRole("link", { name: adaCall }).waitFor();
      expect(await phone.getByRole("button", { name: "Search" }).isVisible()).toBe(true);
      await expect.poll(() => fitsWidth(phone), WAIT).toBe(true);
      await phone.context().close();
    },
    TEST_TIMEOUT,
  );

  it(
    "draws a trace from the external user to the downstream agent, with cost and duration on the edges",
    async () => {
      const page = await dashboard.signedInPage();
      await page.goto(`/lineage/${adaCall}`);
      const graph = page.getByRole("img", { name: /^Call graph: 5 nodes and 4 edges/ });
      await graph.waitFor();
      const labels = await graph.locator("text").allTextContents();
      expect(labels).toEqual(
        expect.arrayContaining(["ada@example.org", "helpdesk", keyPrefix, "trip-planner", "hotel-booker"]),
      );
      expect(labels.some((label) => /^\$0\.40 · \d+ ms$/.test(label))).toBe(true);
      expect(labels).toContainEqual(expect.stringMatching(/^\$0\.15 · \d+ ms$/));

      const edges = page.getByRole("list", { name: "Edges of the call graph" }).getByRole("listitem");
      expect(await edges.count()).toBe(4);
      expect(await edges.allTextContents()).toContainEqual(
        expect.stringMatching(
          /^ada@example\.org \(external user\) → helpdesk \(external system\): 1 call, cost \$0\.40,\s*duration \d+ ms$/,
        ),
      );

      const records = page
        .getByRole("table", { name: "Records in this trace, oldest first" })
        .getByRole("row");
      await expect.poll(() => records.count(), WAIT).toBe(3);
      expect(await records.nth(1).textContent()).toContain("trip-planner");
      expect(await records.nth(2).textContent()).toContain("hotel-booker");
      await page.screenshot({ path: join(SCREENSHOT_DIR, "lineage-graph.png"), fullPage: true });
      await page.context().close();

      const phone = await dashboard.signedInPage({ viewport: PHONE });
      await phone.goto(`/lineage/${adaCall}`);
      await phone.getByRole("img", { name: /^Call graph/ }).waitFor();
      expect(await phone.getByRole("heading", { name: `Trace of ${adaCall}` }).isVisible()).toBe(true);
      await expect.poll(() => fitsWidth(phone), WAIT).toBe(true);
      await phone.context().close();
    },
    TEST_TIMEOUT,
  );

  it(
    "opens a call's page from the link its chat message carries",
    async () => {
      const slack = await startMockAgent(() => ({ body: "ok" }));
      try {
        const notifier = await registerAgent(t, others.url, {
          name: "trip-notifier",
          platform: "slack",
          platform_config: { webhook_url: slack.url, channel: "#trips" },
        });
        const call = await invoke(notifier, ada, 200);
        await expect.poll(() => slack.requests.length, WAIT).toBe(1);
        const links = JSON.stringify(slack.requests[0]?.body).match(/https?:\/\/[^"\s]+/g) ?? [];
        const link = links.find((url) => url.includes(call));
        expect(link, `no link to ${call} in ${links.join(", ")}`).toBeDefined();

        const page = await dashboard.signedInPage();
        await page.goto(new URL(link as string).pathname);
        await page.getByRole("heading", { name: `Trace of ${call}` }).waitFor(WAIT);
        await page.context().close();
      } finally {
        await slack.close();
      }
    },
    TEST_TIMEOUT,
  );
});

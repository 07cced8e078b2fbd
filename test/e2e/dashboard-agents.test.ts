import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser, SCREENSHOT_DIR, type TestBrowser } from "../helpers/browser.js";
import { fitsWidth, PHONE, WAIT } from "../helpers/dashboard.js";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import {
  invokeEnv,
  registerAgent,
  serveOnLoopback,
  startTestSteward,
  type TestSteward,
} from "../helpers/steward.js";

/**
 * The agent screens: the list with its URL-kept filters, the registration wizard with
 * forms generated from the config schemas, and an agent's page with invoke, invocations,
 * deliveries and governance — against a real Steward, a stand-in agent and a stand-in Slack.
 */
describe("dashboard agents", () => {
  let t: TestSteward;
  let browser: TestBrowser;
  let baseUrl: string;
  let agent: MockAgent;
  let slack: MockAgent;

  beforeAll(async () => {
    agent = await startMockAgent((request) => ({
      body: {
        result: `Triage of "${String(request.body.input)}": priority P2, route to the on-call engineer.`,
      },
    }));
    // Slack's incoming webhooks answer a plain "ok".
    slack = await startMockAgent(() => ({ body: "ok" }));
    t = await startTestSteward("postgres", invokeEnv());
    baseUrl = await serveOnLoopback(t);
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await agent?.close();
    await slack?.close();
  });

  const TEST_TIMEOUT = 120_000;

  const rowNames = (page: Page) => page.getByRole("table").getByRole("link").allTextContents();

  it(
    "lists agents with search, platform and status filters that survive a reload",
    async () => {
      await registerAgent(t, agent.url, {
        name: "support-triage",
        description: "Sorts incoming support tickets",
        platform: "slack",
        platform_config: { webhook_url: slack.url, channel: "#support" },
        tags: ["support"],
      });
      await registerAgent(t, agent.url, {
        name: "billing-assistant",
        description: "Answers invoice questions",
        tags: ["billing"],
        auth_type: "bearer_token",
        auth_config: { token: "billing-token-1234" },
      });
      await registerAgent(t, agent.url, {
        name: "release-notes-writer",
        platform: "discord",
        platform_config: { webhook_url: slack.url },
        tags: ["engineering"],
      });
      await registerAgent(t, agent.url, { name: "legacy-summarizer", status: "inactive" });

      const page = await browser.signedInPage(baseUrl, t.adminKey);
      await page.goto("/agents");
      await page.getByRole("link", { name: "support-triage" }).waitFor();
      expect(await rowNames(page)).toEqual(
        expect.arrayContaining([
          "support-triage",
          "billing-assistant",
          "release-notes-writer",
          "legacy-summarizer",
        ]),
      );
      await page.screenshot({ path: `${SCREENSHOT_DIR}/agents.png`, fullPage: true });

      await page.getByLabel("Platform").selectOption("slack");
      await expect.poll(() => rowNames(page), WAIT).toEqual(["support-triage"]);
      expect(new URL(page.url()).searchParams.get("platform")).toBe("slack");

      await page.getByLabel("Platform").selectOption("");
      await page.getByRole("searchbox", { name: "Search" }).fill("invoice");
      await page.getByRole("button", { name: "Search", exact: true }).click();
      await expect.poll(() => rowNames(page), WAIT).toEqual(["billing-assistant"]);

      await page.reload();
      await expect.poll(() => rowNames(page), WAIT).toEqual(["billing-assistant"]);
      expect(await page.getByRole("searchbox", { name: "Search" }).inputValue()).toBe("invoice");

      await page.getByRole("searchbox", { name: "Search" }).fill("");
      await page.getByRole("button", { name: "Search", exact: true }).click();
      await page.getByLabel("Status").selectOption("inactive");
      await expect.poll(() => rowNames(page), WAIT).toEqual(["legacy-summarizer"]);
      await page.reload();
      expect(await page.getByLabel("Status").inputValue()).toBe("inactive");
      await expect.poll(() => rowNames(page), WAIT).toEqual(["legacy-summarizer"]);

      await page.getByLabel("Status").selectOption("deleted");
      await page.getByText("No agent matches these filters.").waitFor();

      // More than a page of matches: the pager walks them, and the page number is in the URL too.
      for (let n = 1; n <= 22; n++)
        await registerAgent(t, agent.url, { name: `batch-${String(n).padStart(2, "0")}` });
      await page.goto("/agents?search=batch");
      await page.getByText("Page 1 of 2 · 22 in all").waitFor();
      await page
        .getByRole("navigation", { name: "Agents pages" })
        .getByRole("button", { name: "Next" })
        .click();
      // Newest first: the second page holds the two registered first.
      await expect.poll(() => rowNames(page), WAIT).toEqual(["batch-02", "batch-01"]);
      expect(new URL(page.url()).searchParams.get("page")).toBe("2");
      await page.reload();
      await page.getByText("Page 2 of 2 · 22 in all").waitFor();
      await page.context().close();

      const phone = await browser.signedInPage(baseUrl, t.adminKey, PHONE);
      await phone.goto("/agents?platform=slack");
      await phone.getByRole("heading", { name: "Agents" }).waitFor();
      expect(await phone.getByLabel("Platform").isVisible()).toBe(true);
      await phone.getByRole("link", { name: "support-triage" }).waitFor();
      await expect.poll(() => fitsWidth(phone), WAIT).toBe(true);
      await phone.context().close();
    },
    TEST_TIMEOUT,
  );

  it(
    "registers a Slack agent through the wizard, shows the server's error at its field, and test-invokes it",
    async () => {
      const page = await browser.signedInPage(baseUrl, t.adminKey);
      await page.goto("/register");
      const stepHeading = page.getByRole("heading", { name: /^Step \d of 6/ });
      const next = page.getByRole("button", { name: "Next" });

      // Step 1: Next without a platform is refused before anything is sent.
      await page.getByLabel("Name (required)").fill("incident-triage");
      await page.getByLabel("Description").fill("Triages incidents and posts the result to #incidents");
      await page.getByLabel("Tags").fill("ops, incidents");
      await next.click();
      await page.getByText("choose where results are delivered").waitFor();
      await page.getByRole("radio", { name: "Slack" }).check();
      await next.click();

      // Step 2: endpoint and authentication, with the bearer-token form from its schema.
      await expect.poll(() => stepHeading.textContent(), WAIT).toContain("Endpoint and authentication");
      await page.getByLabel("Endpoint URL (required)").fill(agent.url);
      await page.getByLabel("Authentication", { exact: true }).selectOption("bearer_token");
      const token = page.getByLabel("Token (required)");
      expect(await token.getAttribute("type")).toBe("password");
      await token.fill("agent-bearer-secret");
      await next.click();

      // Step 3: Slack's settings; a webhook URL that is not a URL, which only the server refuses.
      await expect.poll(() => stepHeading.textContent(), WAIT).toContain("Platform settings");
      const slackWebhook = page.getByLabel("Webhook URL (required)");
      await slackWebhook.fill("hooks.slack.example/T000/B000");
      await page.getByLabel("Channel (required)").fill("#incidents");
      await next.click();

      // Step 4: governance.
      await expect.poll(() => stepHeading.textContent(), WAIT).toContain("Governance");
      await page.getByLabel("Requests per minute").first().fill("30");
      await page.getByLabel("Max daily cost").fill("5");
      await page.getByLabel("Cost per execution").fill("0.02");
      // A duration in the approval workflow: a union of integer and string in the server's schema.
      await page.getByLabel("Timeout", { exact: true }).fill("1h");
      await page.screenshot({ path: `${SCREENSHOT_DIR}/register-governance.png`, fullPage: true });
      await next.click();

      // Step 5: review, secrets hidden; Steward refuses and the wizard goes back to the field.
      await expect.poll(() => stepHeading.textContent(), WAIT).toContain("Review");
      expect(await page.getByText("agent-bearer-secret").count()).toBe(0);
      expect(await page.getByText("•••••• (hidden)").count()).toBe(2);
      await page.screenshot({ path: `${SCREENSHOT_DIR}/register-wizard.png`, fullPage: true });
      await page.getByRole("button", { name: "Register agent" }).click();
      await expect.poll(() => stepHeading.textContent(), WAIT).toContain("Platform settings");
      expect(await slackWebhook.getAttribute("aria-invalid")).toBe("true");
      const fieldError = page.locator(".field", { has: slackWebhook }).locator(".field-error");
      expect(await fieldError.textContent()).toBe("must be an absolute http or https URL");
      expect(await slackWebhook.inputValue()).toBe("hooks.slack.example/T000/B000");
      await page.getByRole("button", { name: "Show Webhook URL" }).click();
      expect(await slackWebhook.getAttribute("type")).toBe("text");

      await slackWebhook.fill(slack.url);
      await expect.poll(() => fieldError.count(), WAIT).toBe(0);
      await next.click();
      await expect.poll(() => stepHeading.textContent(), WAIT).toContain("Governance");
      expect(await page.getByLabel("Max daily cost").inputValue()).toBe("5");
      // Steward's own rule for the approval workflow, shown at the workflow's fieldset.
      const workflow = page.getByRole("group", { name: "Workflow" });
      await workflow.getByText("must name at least one approver").waitFor();
      await workflow.getByRole("checkbox", { name: "admin" }).check();
      await next.click();
      await page.getByRole("button", { name: "Register agent" }).click();

      // Step 6: the test invocation calls the new agent once, with the credential it was given.
      await expect.poll(() => stepHeading.textContent(), WAIT).toContain("Test invocation");
      await page.getByText("Registered incident-triage").waitFor();
      const before = agent.requests.length;
      await page.getByRole("button", { name: "Invoke" }).click();
      const result = page.getByRole("region", { name: "Invocation result" });
      await result.getByText('Triage of "Hello from the Steward dashboard"', { exact: false }).waitFor();
      expect(await result.getByText("success").isVisible()).toBe(true);
      expect(agent.requests.length).toBe(before + 1);
      expect(agent.requests.at(-1)?.headers.authorization).toBe("Bearer agent-bearer-secret");

      await page.getByRole("link", { name: "Open incident-triage's page" }).click();
      await page.getByRole("heading", { level: 1, name: "incident-triage" }).waitFor();
      expect(new URL(page.url()).pathname).toMatch(/^\/agents\/agt_/);
      const registered = await t.request({
        method: "GET",
        url: `/api/v1/external-agents/${new URL(page.url()).pathname.split("/").pop()}`,
      });
      expect(registered.json()).toMatchObject({
        rate_limit_config: { requests_per_minute: 30 },
        budget_config: { max_daily_cost: 5, cost_per_execution: 0.02 },
        approval_config: { triggers: {}, workflow: { approver_roles: ["admin"], timeout: "1h" } },
      });
      await page.context().close();

      // At phone width every step fits, each checked once its form (built from the schemas) is there.
      const phone = await browser.signedInPage(baseUrl, t.adminKey, PHONE);
      const phoneStep = phone.getByRole("heading", { name: /^Step \d of 6/ });
      const phoneNext = phone.getByRole("button", { name: "Next" });
      await phone.goto("/register");
      await phone.getByRole("heading", { name: "Register an agent" }).waitFor();
      await phone.getByRole("radio", { name: "Slack" }).waitFor();
      await expect.poll(() => fitsWidth(phone), WAIT).toBe(true);
      await phone.getByLabel("Name (required)").fill("phone-triage");
      await phone.getByRole("radio", { name: "Slack" }).check();
      await phoneNext.click();

      await expect.poll(() => phoneStep.textContent(), WAIT).toContain("Endpoint and authentication");
      await phone.getByLabel("Endpoint URL (required)").fill(agent.url);
      await phone.getByLabel("Authentication", { exact: true }).selectOption("bearer_token");
      await phone.getByLabel("Token (required)").fill("phone-bearer-secret");
      await expect.poll(() => fitsWidth(phone), WAIT).toBe(true);
      await phoneNext.click();

      await expect.poll(() => phoneStep.textContent(), WAIT).toContain("Platform settings");
      await phone.getByLabel("Webhook URL (required)").fill(slack.url);
      await phone.getByLabel("Channel (required)").fill("#incidents");
      await expect.poll(() => fitsWidth(phone), WAIT).toBe(true);
      await phoneNext.click();

      await expect.poll(() => phoneStep.textContent(), WAIT).toContain("Governance");
      await phone.getByLabel("Max daily cost").waitFor();
      await phone.getByRole("group", { name: "Workflow" }).getByRole("checkbox", { name: "admin" }).waitFor();
      await expect.poll(() => fitsWidth(phone), WAIT).toBe(true);
      await phoneNext.click();

      await expect.poll(() => phoneStep.textContent(), WAIT).toContain("Review");
      await phone.getByRole("button", { name: "Register agent" }).waitFor();
      await expect.poll(() => phone.getByText("•••••• (hidden)").count(), WAIT).toBe(2);
      await expect.poll(() => fitsWidth(phone), WAIT).toBe(true);
      await phone.context().close();
    },
    TEST_TIMEOUT,
  );

  it(
    "invokes an agent from its page and shows the invocation, its delivery and its governance",
    async () => {
      const id = await registerAgent(t, agent.url, {
        name: "oncall-summarizer",
        description: "Summarizes pages for the on-call engineer",
        platform: "slack",
        platform_config: { webhook_url: slack.url, channel: "#oncall" },
        auth_type: "api_key",
        auth_config: { key: "summarizer-key-9876" },
        rate_limit_config: { requests_per_minute: 20, requests_per_hour: 500 },
        budget_config: { max_daily_cost: 2, max_monthly_cost: 40, cost_per_execution: 0.25 },
        tags: ["ops"],
      });
      const page = await browser.signedInPage(baseUrl, t.adminKey);
      await page.goto(`/agents/${id}`);
      await page.getByRole("heading", { level: 1, name: "oncall-summarizer" }).waitFor();
      // The API masks credentials; the page shows them as it gets them.
      await page.getByText("****9876").waitFor();
      expect(await page.getByText("summarizer-key-9876").count()).toBe(0);
      await page.getByText("No invocations yet.", { exact: false }).waitFor();

      const slackBefore = slack.requests.length;
      await page.getByLabel("Input").fill("Disk usage on db-1 crossed 90%");
      await page.getByLabel("Context (optional)").fill('{"environment": "production"}');
      await page.getByRole("button", { name: "Invoke" }).click();
      const result = page.getByRole("region", { name: "Invocation result" });
      await result.getByText('Triage of "Disk usage on db-1 crossed 90%"', { exact: false }).waitFor();
      const invocationId = (await result.getByRole("link").textContent()) ?? "";
      expect(invocationId).toMatch(/^inv_/);
      expect(await result.getByText("$0.2500").isVisible()).toBe(true);
      expect(agent.requests.at(-1)?.body.context).toMatchObject({ environment: "production" });

      const invocations = page.getByRole("region", { name: "Recent invocations" });
      await invocations.getByRole("link", { name: `Trace of ${invocationId}` }).waitFor();

      // The result reaches the Slack stand-in; the deliveries list follows it to delivered.
      await expect.poll(() => slack.requests.length, WAIT).toBeGreaterThan(slackBefore);
      const deliveries = page.getByRole("region", { name: "Deliveries" });
      const deliveryRow = deliveries.getByRole("row").filter({ hasText: invocationId });
      await expect
        .poll(async () => {
          await deliveries.getByRole("button", { name: "Refresh deliveries" }).click();
          return deliveryRow.getByText("delivered", { exact: true }).count();
        }, WAIT)
        .toBe(1);

      // The invocation's own record follows: its delivery column turns delivered too.
      const invocationRow = invocations.getByRole("row").filter({ hasText: invocationId });
      await expect
        .poll(async () => {
          await invocations.getByRole("button", { name: "Refresh invocations" }).click();
          return invocationRow.getByText("delivered", { exact: true }).count();
        }, WAIT)
        .toBe(1);

      const governance = page.getByRole("region", { name: "Governance status" });
      await governance.getByRole("button", { name: "Refresh governance status" }).click();
      const dailyCost = governance.getByRole("meter", { name: /Agent daily cost/ });
      await expect.poll(() => dailyCost.getAttribute("value"), WAIT).toBe("0.25");
      expect(await governance.getByRole("cell", { name: "minute" }).count()).toBeGreaterThan(0);
      await page.screenshot({ path: `${SCREENSHOT_DIR}/agent-detail.png`, fullPage: true });

      await invocations.getByRole("link", { name: `Trace of ${invocationId}` }).click();
      await expect.poll(() => new URL(page.url()).pathname, WAIT).toBe(`/lineage/${invocationId}`);
      // The trace as a graph: the credential that called, then the agent, with the call's cost on the edge.
      await page.getByRole("img", { name: /^Call graph:/ }).waitFor();
      const edges = page.getByRole("list", { name: "Edges of the call graph" });
      await expect
        .poll(() => edges.textContent(), WAIT)
        .toMatch(/\(steward credential\) → oncall-summarizer \(agent\)/);
      expect(await edges.textContent()).toContain("cost $0.25");
      await page.context().close();

      const phone = await browser.signedInPage(baseUrl, t.adminKey, PHONE);
      await phone.goto(`/agents/${id}`);
      await phone.getByRole("heading", { level: 1, name: "oncall-summarizer" }).waitFor();
      expect(await phone.getByRole("button", { name: "Invoke" }).isVisible()).toBe(true);
      // Each region's content, not just its heading: a table or meter that comes late may widen the page.
      await phone.getByText("****9876").waitFor();
      await phone
        .getByRole("region", { name: "Recent invocations" })
        .getByRole("row")
        .filter({ hasText: invocationId })
        .waitFor();
      await phone
        .getByRole("region", { name: "Deliveries" })
        .getByRole("row")
        .filter({ hasText: invocationId })
        .waitFor();
      await phone
        .getByRole("region", { name: "Governance status" })
        .getByRole("meter", { name: /Agent daily cost/ })
        .waitFor();
      await expect.poll(() => fitsWidth(phone), WAIT).toBe(true);
      await phone.context().close();
    },
    TEST_TIMEOUT,
  );
});

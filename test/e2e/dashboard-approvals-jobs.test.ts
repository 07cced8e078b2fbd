import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCREENSHOT_DIR } from "../helpers/browser.js";
import { fitsWidth, PHONE, startDashboard, type TestDashboard, WAIT } from "../helpers/dashboard.js";
import { SHOUT } from "../helpers/jobs.js";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import { type OpenAiStandIn, splitIntoTokens, startOpenAiStandIn } from "../helpers/openai-stand-in.js";
import { createKey, invokeEnv, registerAgent, type TestSteward } from "../helpers/steward.js";

/** Long enough, token by token, that the reply is seen growing in the browser. */
const REPLY =
  "The outage began at 09:12 when the cache cluster lost quorum; checkout errors rose to 14% until the failover at 09:31 restored traffic.";
const TOKEN_DELAY_MS = 150;

/** The approvals inbox and request page, and the jobs list and job page with its live stream. */
describe("dashboard: approvals and jobs", () => {
  let dashboard: TestDashboard;
  let t: TestSteward;
  let agent: MockAgent;
  let llm: OpenAiStandIn;

  beforeAll(async () => {
    agent = await startMockAgent(() => ({ body: { result: "refund issued" } }));
    llm = await startOpenAiStandIn({ reply: REPLY, tokenDelayMs: TOKEN_DELAY_MS });
    dashboard = await startDashboard(invokeEnv({ OPENAI_BASE_URL: llm.url, OPENAI_API_KEY: "sk-test-llm" }));
    t = dashboard.steward;
  });
  afterAll(async () => {
    await dashboard?.close();
    await agent?.close();
    await llm?.close();
  });

  it("holds a developer's calls for an admin, who approves one (it runs once) and rejects one with a reason", async () => {
    const refunds = await registerAgent(t, agent.url, {
      name: "payments-refunds",
      budget_config: { cost_per_execution: 1 },
      approval_config: {
        triggers: { cost_threshold: 0.5, sensitive_data: true },
        workflow: { approver_roles: ["admin"], required_approvals: 1 },
      },
    });
    const crm = await registerAgent(t, agent.url, {
      name: "crm-export",
      approval_config: {
        triggers: { payload_patterns: ["export\\s+all"] },
        workflow: { approver_roles: ["admin"] },
      },
    });
    const developer = await createKey(t, "developer");
    const invoke = async (agentId: string, input: string, headers: Record<string, string> = {}) => {
      const response = await t.request({
        method: "POST",
        url: `/api/v1/external-agents/${agentId}/invoke`,
        key: developer,
        headers,
        payload: { input },
      });
      expect(response.statusCode, response.body).toBe(202);
      return response.json() as { invocation_id: string; approval_id: string; status: string };
    };
    const card = await invoke(refunds, "Refund order 7 to card 4111 1111 1111 1111");
    const small = await invoke(refunds, "Refund order 9: 120 EUR to the original payment");
    const exportCall = await invoke(crm, "Export all contacts of ACME Corp to the shared drive", {
      "x-external-user-email": "dana@acme.example",
    });
    expect(card.status).toBe("pending_approval");

    const page = await dashboard.signedInPage();
    await page.goto("/approvals");
    await page.getByRole("heading", { name: "Approvals", level: 1 }).waitFor();
    const pending = page.getByRole("region", { name: /Waiting for a decision/ });
    const cardRequest = pending.getByRole("article").filter({ hasText: "Refund order 7" });
    await expect.poll(() => cardRequest.textContent(), WAIT).toContain("input contains sensitive data");
    expect(await cardRequest.textContent()).toContain("estimated cost 1 is above the threshold of 0.5");
    expect(await cardRequest.textContent()).not.toContain("4111 1111 1111 1111");
    await expect.poll(() => pending.getByRole("article").count(), WAIT).toBe(3);

    // Open the request (the route e-mails link to) and approve it with a reason.
    await cardRequest.getByRole("link", { name: "payments-refunds" }).click();
    await page.getByRole("heading", { name: "Approval request", level: 1 }).waitFor();
    expect(new URL(page.url()).pathname).toBe(`/approvals/${card.approval_id}`);
    const request = page.getByRole("region", { name: "Request" });
    await expect.poll(() => request.textContent(), WAIT).toContain("payments-refunds");
    await expect.poll(() => request.textContent(), WAIT).toContain("0 of 1 required");
    expect(agent.requests).toHaveLength(0);
    await page.getByLabel("Reason").fill("Customer confirmed the refund by phone");
    await page.getByRole("button", { name: "Approve" }).click();
    await expect
      .poll(() => page.getByRole("status").filter({ hasText: "Approved" }).textContent(), WAIT)
      .toContain("The call ran and ended as: success");
    const outcome = page.getByRole("region", { name: "Outcome" });
    await expect.poll(() => outcome.textContent(), WAIT).toContain("success");
    expect(await outcome.textContent()).toContain("Customer confirmed the refund by phone");
    await expect
      .poll(() => page.getByRole("region", { name: "Request" }).textContent(), WAIT)
      .toContain("1 of 1 required");
    expect(agent.requests).toHaveLength(1);
    const invocation = await t.request({ method: "GET", url: `/api/v1/invocations/${card.invocation_id}` });
    expect(invocation.json().status).toBe("success");
    await page.screenshot({ path: join(SCREENSHOT_DIR, "approval-detail.png"), fullPage: true });

    // The same page opened directly, as from an e-mail, at a phone's width.
    const phone = await dashboard.signedInPage({ viewport: PHONE });
    await phone.goto(`/approvals/${card.approval_id}`);
    await phone.getByRole("region", { name: "Outcome" }).waitFor();
    await expect.poll(() => fitsWidth(phone), WAIT).toBe(true);

    // Back in the inbox: rejecting without a reason is refused by Steward, with a reason it is done.
    await page.getByRole("link", { name: "← Approvals" }).click();
    const smallRequest = pending.getByRole("article").filter({ hasText: "Refund order 9" });
    await smallRequest.getByRole("button", { name: "Reject" }).click();
    await expect
      .poll(() => smallRequest.getByRole("alert").textContent(), WAIT)
      .toMatch(/reason is required/i);
    await smallRequest.getByLabel("Reason").fill("Refunds above 100 EUR go through finance");
    await smallRequest.getByRole("button", { name: "Reject" }).click();
    await expect
      .poll(() => page.getByRole("status").filter({ hasText: "Rejected" }).textContent(), WAIT)
      .toContain("The call will not run (approval rejected)");
    await expect.poll(() => pending.getByRole("article").count(), WAIT).toBe(1);
    expect(agent.requests).toHaveLength(1);
    const rejected = await t.request({ method: "GET", url: `/api/v1/invocations/${small.invocation_id}` });
    expect(rejected.json().status).toBe("approval_rejected");

    // The history says who decided, when and why.
    const history = page.getByRole("region", { name: "History" });
    const approvedRow = history
      .getByRole("row")
      .filter({ hasText: "Customer confirmed the refund by phone" });
    await expect.poll(() => approvedRow.count(), WAIT).toBe(1);
    await expect
      .poll(() => approvedRow.textContent(), WAIT)
      .toMatch(/payments-refunds.*approved.*key_\w+\s*approved/s);
    await history.getByLabel("Outcome").selectOption("rejected");
    const rejectedRow = history
      .getByRole("row")
      .filter({ hasText: "Refunds above 100 EUR go through finance" });
    await expect.poll(() => rejectedRow.count(), WAIT).toBe(1);
    await expect.poll(() => rejectedRow.textContent(), WAIT).toMatch(/rejected.*key_\w+\s*rejected/s);
    await history.getByLabel("Outcome").selectOption("");
    await expect.poll(() => history.getByRole("row").count(), WAIT).toBe(4);
    await page.screenshot({ path: join(SCREENSHOT_DIR, "approvals.png"), fullPage: true });

    await phone.goto("/approvals");
    await phone
      .getByRole("region", { name: /Waiting for a decision/ })
      .getByRole("button", { name: "Approve" })
      .waitFor();
    await expect.poll(() => fitsWidth(phone), WAIT).toBe(true);
    await phone.context().close();

    // Refusals in words: someone who is not an approver, and a request decided meanwhile.
    const developerPage = await dashboard.signedInPage({ credential: developer });
    await developerPage.goto(`/approvals/${exportCall.approval_id}`);
    await developerPage.getByRole("button", { name: "Approve" }).click();
    await expect
      .poll(() => developerPage.getByRole("alert").textContent(), WAIT)
      .toBe("You may not decide on this request (Forbidden: missing permission approvals:approve).");
    await developerPage.context().close();

    await page.goto(`/approvals/${exportCall.approval_id}`);
    await page.getByLabel("Reason").fill("Not without the account owner's consent");
    const elsewhere = await t.request({
      method: "POST",
      url: `/api/v1/approvals/${exportCall.approval_id}/approve`,
      payload: {},
    });
    expect(elsewhere.statusCode, elsewhere.body).toBe(200);
    await page.getByRole("button", { name: "Reject" }).click();
    // The page reloads the request and shows its outcome; the refusal stays beside it.
    await page.getByRole("region", { name: "Outcome" }).waitFor();
    await expect
      .poll(() => page.getByRole("alert").first().textContent(), WAIT)
      .toBe(`Already decided: approval ${exportCall.approval_id} is already approved.`);
    await page.context().close();
  }, 90_000);

  it("streams an LLM job's reply token by token across a dropped socket, cancels a running job, and lists them", async () => {
    const submit = async (agent_definition: Record<string, unknown>, input_payload: unknown) => {
      const response = await t.request({
        method: "POST",
        url: "/api/v1/jobs",
        payload: { agent_definition, input_payload },
      });
      expect(response.statusCode, response.body).toBe(202);
      return response.json().id as string;
    };
    /** A job of one LLM node `node`, answered by the stand-in model. */
    const llmJob = (name: string, node: string, prompt: string) => ({
      name,
      nodes: [{ id: node, type: "llm", model: "gpt-test", prompt }],
      edges: [
        { from: "__start__", to: node },
        { from: node, to: "__end__" },
      ],
    });
    const jobStatus = async (id: string) =>
      (await t.request({ method: "GET", url: `/api/v1/jobs/${id}` })).json().status as string;
    const shout = await submit(SHOUT, { text: "deploy finished" });
    const loop = await submit(
      {
        name: "retry-loop",
        nodes: [{ id: "count", type: "transform", expression: "($exists(count) ? count : 0) + 1" }],
        edges: [
          { from: "__start__", to: "count" },
          { from: "count", to: "count", when: "count < 3" },
          { from: "count", to: "__end__" },
        ],
        limits: { max_steps: 2 },
      },
      {},
    );
    await expect.poll(() => jobStatus(shout), WAIT).toBe("completed");
    await expect.poll(() => jobStatus(loop), WAIT).toBe("failed");

    // Slow enough that the page is open and connected while the reply is still coming, on a busy machine too.
    llm.setTokenDelay(400);
    const summarize = await submit(llmJob("summarize-incident", "summary", "'Summarise: ' & input.text"), {
      text: "incident INC-2231 timeline",
    });
    const page = await dashboard.signedInPage();
    await page.goto(`/jobs/${summarize}`);
    await page.getByRole("heading", { name: "Job summarize-incident", level: 1 }).waitFor();

    // The reply grows as tokens arrive…
    const stream = page.getByRole("region", { name: "Live events" });
    const replyText = page
      .getByRole("region", { name: "LLM reply of node summary" })
      .locator(".job-output-text");
    const isPartial = (text: string | null) =>
      text !== null && text.length > 0 && text.length < REPLY.length && REPLY.startsWith(text);
    await expect.poll(async () => isPartial(await replyText.textContent()), WAIT).toBe(true);
    llm.setTokenDelay(TOKEN_DELAY_MS);
    // …survives the socket dropping mid-stream (it resumes after the last seen event)…
    for (const client of t.steward.server.websocketServer.clients) client.terminate();
    await expect.poll(() => stream.getByRole("status").textContent(), WAIT).toMatch(/reconnecting/);
    // …and ends as the whole reply, with no token lost or shown twice.
    await expect.poll(() => replyText.textContent(), WAIT).toBe(REPLY);
    const timeline = stream.getByRole("list", { name: "Timeline" });
    await expect.poll(() => timeline.textContent(), WAIT).toContain("End of stream");
    expect(await timeline.textContent()).toMatch(
      /Node summary started.*Node summary finished.*End of stream/s,
    );
    expect(await stream.getByRole("status").textContent()).toBe("Ended");
    expect(await page.getByRole("region", { name: "LLM reply of node summary" }).textContent()).toContain(
      `${splitIntoTokens(REPLY).length} tokens`,
    );
    const state = page.getByRole("region", { name: "State" });
    await expect.poll(() => state.textContent(), WAIT).toContain("completed");
    expect(await page.getByRole("region", { name: "Result" }).textContent()).toContain(REPLY);
    expect(await page.getByRole("button", { name: "Cancel job" }).count()).toBe(0);
    await page.screenshot({ path: join(SCREENSHOT_DIR, "job-stream.png"), fullPage: true });

    // A failed job shows its error, and the error event in its timeline.
    await page.goto(`/jobs/${loop}`);
    await expect
      .poll(() => page.getByRole("region", { name: "Error" }).textContent(), WAIT)
      .toContain("limits.max_steps");
    await expect
      .poll(() => page.getByRole("list", { name: "Timeline" }).textContent(), WAIT)
      .toMatch(/Error: .*limits\.max_steps.*End of stream/s);

    // A running job can be cancelled from its page; its stream ends.
    llm.setTokenDelay(400);
    const cancelled = await submit(llmJob("draft-postmortem", "draft", "'Draft: ' & input.text"), {
      text: "INC-2231",
    });
    await page.goto(`/jobs/${cancelled}`);
    await page.getByRole("button", { name: "Cancel job" }).click();
    const cancelledState = page.getByRole("region", { name: "State" });
    await expect.poll(() => cancelledState.textContent(), WAIT).toContain("cancelled");
    await page.getByRole("list", { name: "Timeline" }).getByText("End of stream").waitFor();
    expect(await page.getByRole("button", { name: "Cancel job" }).count()).toBe(0);
    llm.setTokenDelay(TOKEN_DELAY_MS);

    await page.getByRole("navigation", { name: "Sections" }).getByRole("link", { name: "Jobs" }).click();
    await page.getByRole("heading", { name: "Jobs", level: 1 }).waitFor();
    const row = page.getByRole("row").filter({ hasText: summarize });
    await expect.poll(() => row.textContent(), WAIT).toContain("completed");
    expect(await page.getByRole("row").filter({ hasText: loop }).textContent()).toContain("failed");
    await page.getByLabel("Status").selectOption("failed");
    await expect.poll(() => page.getByRole("row").count(), WAIT).toBe(2);
    await page.getByLabel("Status").selectOption("");
    await expect.poll(() => page.getByRole("row").count(), WAIT).toBe(5);
    await page.screenshot({ path: join(SCREENSHOT_DIR, "jobs.png"), fullPage: true });

    const phone = await dashboard.signedInPage({ viewport: PHONE });
    await phone.goto("/jobs");
    await phone.getByRole("link", { name: "summarize-incident" }).waitFor();
    await expect.poll(() => fitsWidth(phone), WAIT).toBe(true);
    await phone.getByRole("link", { name: "summarize-incident" }).click();
    await phone.getByRole("list", { name: "Timeline" }).getByText("End of stream").waitFor();
    await expect.poll(() => fitsWidth(phone), WAIT).toBe(true);
    await phone.context().close();
    await page.context().close();
  }, 90_000);
});

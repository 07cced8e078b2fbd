import { fileURLToPath } from "node:url";
import type {} from "@fastify/websocket";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCREENSHOT_DIR } from "../helpers/browser.js";
import { fitsWidth, PHONE, startDashboard, type TestDashboard, WAIT } from "../helpers/dashboard.js";
import { freePort } from "../helpers/ports.js";
import type { TestSteward } from "../helpers/steward.js";

const EXAMPLES = fileURLToPath(new URL("../../examples/agents/", import.meta.url));
const AGENTS = "/api/v1/agents";

/**
 * The managed-agent screens against a Steward running the example package (log-sentinel)
 * as a real child process, next to two agents registered by hand that report over HTTP.
 */
describe("dashboard: managed agents", () => {
  let dashboard: TestDashboard;
  let t: TestSteward;
  let sentinelId: string;

  const api = async (method: "GET" | "POST" | "PUT", url: string, payload?: object, key?: string) => {
    const response = await t.request({ method, url, key, ...(payload === undefined ? {} : { payload }) });
    if (response.statusCode >= 300)
      throw new Error(`${method} ${url}: ${response.statusCode} ${response.body}`);
    return response.json();
  };
  /** A fresh token of the agent's own, to report as the agent does. */
  const agentToken = async (id: string): Promise<string> =>
    (await api("POST", `${AGENTS}/${id}/token`)).token;

  /** An agent defined by hand that has said it is alive (so it is running), as one running elsewhere does. */
  async function registerReporting(name: string, description: string) {
    const registered = await api("POST", AGENTS, {
      name,
      version: "2.1.0",
      description,
      type: "watcher",
      subscribed_topics: ["billing.events"],
      findings_topic: "findings.billing",
    });
    await api(
      "POST",
      `${AGENTS}/${registered.agent.id}/heartbeat`,
      { status: "running", uptime: 5400 },
      registered.credentials.token,
    );
    return registered.agent.id as string;
  }

  beforeAll(async () => {
    // The example agent reports to STEWARD_URL, which is built from PORT: Steward must listen there.
    dashboard = await startDashboard(
      {
        STEWARD_AGENTS_DIR: EXAMPLES,
        STEWARD_AGENTS_WATCH: "false",
        // A crash is final: the process manager gives up at once, and the agent ends `failed`.
        STEWARD_AGENTS_MAX_RESTARTS: "0",
        STEWARD_AGENTS_STOP_GRACE_MS: "2000",
      },
      { port: await freePort() },
    );
    t = dashboard.steward;

    const discovered = await api("GET", `${AGENTS}?name=log-sentinel`);
    sentinelId = discovered.items[0].id;
    await api("POST", AGENTS, { agent_id: sentinelId });
    await registerReporting("cost-watcher", "Watches cloud spending against the monthly budget");
    const auditor = await registerReporting(
      "invoice-auditor",
      "Checks supplier invoices against purchase orders",
    );
    await api("PUT", `${AGENTS}/${auditor}/status`, {
      status: "stopped",
      reason: "paused for the quarter close",
    });
  });
  afterAll(async () => {
    await dashboard?.close();
  });

  const card = (page: Page, name: string) => page.getByRole("article", { name });
  /** The pid of the agent's process as this Steward runs it. */
  const pid = async (): Promise<number | null> =>
    (await api("GET", `${AGENTS}/${sentinelId}/process`)).process?.pid ?? null;

  it("see a managed agent go from running to failed live when its process is killed", async () => {
    const page = await dashboard.signedInPage();
    await page.goto("/managed");
    await page.getByRole("heading", { name: "Managed agents", level: 1 }).waitFor();
    await page.getByRole("status").filter({ hasText: "Live" }).waitFor();
    const sentinel = card(page, "log-sentinel");
    await sentinel.getByText("registered", { exact: true }).waitFor();
    await card(page, "cost-watcher").getByText("running", { exact: true }).waitFor();
    await card(page, "invoice-auditor").getByText("stopped", { exact: true }).waitFor();

    await sentinel.getByRole("button", { name: "Start log-sentinel" }).click();
    await sentinel.getByText("running", { exact: true }).waitFor();
    // Its first heartbeat arrives over the socket: healthy, with a ticking uptime.
    await sentinel.getByText("healthy", { exact: true }).waitFor();
    await sentinel.getByText(/ago$/).waitFor();
    await sentinel.getByRole("button", { name: "Stop log-sentinel" }).waitFor();
    await page.screenshot({ path: `${SCREENSHOT_DIR}/managed-agents.png`, fullPage: true });

    // The server drops every socket: the board says so, and comes back by itself.
    for (const client of t.steward.server.websocketServer.clients) client.terminate();
    await page.getByRole("status").filter({ hasText: "Reconnecting" }).waitFor();
    await page.getByRole("status").filter({ hasText: "Live" }).waitFor();

    // Anything the page set survives only if it is never reloaded.
    await page.evaluate("window.notReloaded = true");
    const running = await pid();
    expect(running).toEqual(expect.any(Number));
    process.kill(running as number, "SIGKILL");

    await sentinel.getByText("failed", { exact: true }).waitFor({ timeout: 20_000 });
    await sentinel.getByRole("button", { name: "Start log-sentinel" }).waitFor();
    expect(await sentinel.getByText("not running").count()).toBe(1);
    expect(await page.evaluate("window.notReloaded")).toBe(true);
    expect((await api("GET", `${AGENTS}/${sentinelId}`)).state).toBe("failed");

    await page.getByLabel("State").selectOption("failed");
    await expect.poll(() => page.getByRole("article").count(), WAIT).toBe(1);
    await card(page, "log-sentinel").waitFor();
    await page.context().close();
  }, 90_000);

  it("shows the board at phone width without scrolling the page sideways", async () => {
    const page = await dashboard.signedInPage({ viewport: PHONE });
    await page.goto("/managed");
    await card(page, "cost-watcher").waitFor();
    expect(await page.getByRole("heading", { name: "Managed agents", level: 1 }).isVisible()).toBe(true);
    expect(await page.getByLabel("State").isVisible()).toBe(true);
    await expect.poll(() => fitsWidth(page), WAIT).toBe(true);
    await page.context().close();
  }, 30_000);

  it("signs out when the credential is revoked while the board is open", async () => {
    const created = await api("POST", "/api/v1/api-keys", { name: "board viewer", role: "viewer" });
    const page = await dashboard.signedInPage({ credential: created.key });
    await page.goto("/managed");
    await card(page, "cost-watcher").waitFor();
    await page.getByRole("status").filter({ hasText: "Live" }).waitFor();

    // The reconnect's handshake gets a 401, which a browser reports only as a dropped socket.
    const revoked = await t.request({ method: "DELETE", url: `/api/v1/api-keys/${created.id}` });
    expect(revoked.statusCode).toBe(204);
    for (const client of t.steward.server.websocketServer.clients) client.terminate();
    await page.getByText("Your session ended; sign in again.").waitFor();
    await page.getByLabel("API key or JWT").waitFor();
    await page.context().close();
  }, 60_000);

  it("charts an agent's metrics, filters its logs by level and keeps its config changes with their diffs", async () => {
    // A crash of its own, so that this test runs alone too: started, then killed.
    await api("POST", `${AGENTS}/${sentinelId}/start`);
    await expect.poll(pid, WAIT).toEqual(expect.any(Number));
    process.kill((await pid()) as number, "SIGKILL");
    await expect.poll(async () => (await api("GET", `${AGENTS}/${sentinelId}`)).state, WAIT).toBe("failed");

    // Reported as the agent reports them, with its own token: an hour of samples and some log lines.
    const token = await agentToken(sentinelId);
    const now = Date.now();
    for (let i = 12; i >= 1; i--) {
      await api(
        "POST",
        `${AGENTS}/${sentinelId}/metrics`,
        {
          timestamp: new Date(now - i * 5 * 60_000).toISOString(),
          events_processed: 400 + ((i * 37) % 150),
          processing_time_ms: 18 + ((i * 7) % 11),
          errors: i % 4 === 0 ? 2 : 0,
          cpu: 3 + ((i * 13) % 9) / 2,
          memory: (58 + ((i * 5) % 9)) * 1_048_576,
        },
        token,
      );
    }
    await api(
      "POST",
      `${AGENTS}/${sentinelId}/logs`,
      {
        entries: [
          {
            level: "debug",
            message: "polling logs.raw.> every 5 s",
            timestamp: new Date(now - 50 * 60_000).toISOString(),
          },
          {
            level: "info",
            message: "12 matching lines in 30s",
            timestamp: new Date(now - 40 * 60_000).toISOString(),
          },
          {
            level: "warn",
            message: "pattern matched 250 lines in one batch; findings are rate limited",
            timestamp: new Date(now - 30 * 60_000).toISOString(),
          },
          {
            level: "error",
            message: "could not publish a finding: findings.logs is not reachable",
            context: { attempt: 3 },
            timestamp: new Date(now - 20 * 60_000).toISOString(),
          },
        ],
      },
      token,
    );

    const page = await dashboard.signedInPage();
    await page.goto("/managed");
    await card(page, "log-sentinel").getByRole("link", { name: "log-sentinel" }).click();
    await page.getByRole("heading", { name: "log-sentinel", level: 1 }).waitFor();
    expect(new URL(page.url()).pathname).toBe(`/managed/${sentinelId}`);

    // Killed above: failed, with why in the status history (oldest first) and a crash-loop alert.
    const history = page.getByRole("region", { name: "Status history" });
    await history
      .getByText(/signal SIGKILL/)
      .last()
      .waitFor();
    await page.getByRole("region", { name: "Open alerts" }).getByText("crash loop").waitFor();
    await page.getByRole("button", { name: "Start log-sentinel" }).click();
    await page.getByRole("button", { name: "Stop log-sentinel" }).waitFor();
    await history.getByRole("cell", { name: "started by the process manager" }).last().waitFor();

    const metrics = page.getByRole("region", { name: "Metrics" });
    await metrics.getByRole("img", { name: /^CPU \(% of one core\)/ }).waitFor();
    await metrics.getByRole("img", { name: /^Memory \(MiB\)/ }).waitFor();
    await metrics.getByRole("img", { name: /^Events processed/ }).waitFor();

    const logs = page.getByRole("region", { name: "Logs" });
    await logs.getByText("pattern matched 250 lines", { exact: false }).waitFor();
    await logs.getByLabel("Level").selectOption("error");
    await expect
      .poll(() => logs.getByText("pattern matched 250 lines", { exact: false }).count(), WAIT)
      .toBe(0);
    await logs.getByText("could not publish a finding", { exact: false }).waitFor();
    const levels = await logs.locator("tbody .badge").allTextContents();
    expect(levels.length).toBeGreaterThan(0);
    expect(new Set(levels)).toEqual(new Set(["error"]));

    const config = page.getByRole("region", { name: "Configuration" });
    await config.getByText("No version stored yet", { exact: false }).waitFor();
    // Refused by the agent's schema (minimum 1): the server's message shows on the field.
    await config.getByLabel("report_every_s").fill("0");
    await config.getByRole("button", { name: "Save as new version" }).click();
    await expect
      .poll(() => config.getByLabel("report_every_s").getAttribute("aria-invalid"), WAIT)
      .toBe("true");
    await config.getByRole("alert").filter({ hasText: "does not match" }).waitFor();

    await config.getByLabel("report_every_s").fill("5");
    await config.getByLabel("severity").selectOption("error");
    await config.getByRole("button", { name: "Save as new version" }).click();
    await config.getByRole("status").filter({ hasText: "Saved as version 1" }).waitFor();
    const first = config.getByRole("listitem", { name: "Version 1" });
    await first.getByText("added", { exact: true }).first().waitFor();
    expect(await first.textContent()).toContain('severity = "error"');

    await config.getByLabel("severity").selectOption("info");
    await config.getByRole("button", { name: "Save as new version" }).click();
    await config.getByRole("status").filter({ hasText: "Saved as version 2" }).waitFor();
    const second = config.getByRole("listitem", { name: "Version 2" });
    await second.getByText("changed", { exact: true }).waitFor();
    expect(await second.textContent()).toContain('severity: "error" → "info"');
    expect(await config.getByRole("row", { name: /severity/ }).textContent()).toContain("stored");

    // The running agent takes the change from its long poll and logs it.
    await logs.getByLabel("Level").selectOption("");
    await logs.getByLabel("Message contains").fill("applied config version 2");
    await logs.getByRole("button", { name: "Search" }).click();
    await expect
      .poll(async () => {
        await logs.getByRole("button", { name: "Refresh logs" }).click();
        return logs.getByRole("cell", { name: "applied config version 2" }).count();
      }, WAIT)
      .toBe(1);
    await logs.getByLabel("Message contains").fill("");
    await logs.getByRole("button", { name: "Search" }).click();

    await first.getByRole("button", { name: "Roll back to version 1" }).click();
    await config.getByRole("status").filter({ hasText: "Saved as version 3" }).waitFor();
    const third = config.getByRole("listitem", { name: "Version 3" });
    await third.getByText("in force").waitFor();
    expect(await third.textContent()).toContain('severity: "info" → "error"');
    expect(await api("GET", `${AGENTS}/${sentinelId}/config`)).toMatchObject({
      version: 3,
      config: { report_every_s: 5, severity: "error" },
      sources: { report_every_s: "stored", severity: "stored", pattern: "default" },
    });

    await page.getByRole("heading", { name: "Metrics" }).scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${SCREENSHOT_DIR}/managed-agent.png`, fullPage: true });
    await page.context().close();

    const phone = await dashboard.signedInPage({ viewport: PHONE });
    await phone.goto(`/managed/${sentinelId}`);
    await phone.getByRole("heading", { name: "log-sentinel", level: 1 }).waitFor();
    await phone.getByRole("img", { name: /^CPU/ }).waitFor();
    expect(await phone.getByRole("button", { name: "Stop log-sentinel" }).isVisible()).toBe(true);
    await expect.poll(() => fitsWidth(phone), WAIT).toBe(true);
    await phone.context().close();

    await api("POST", `${AGENTS}/${sentinelId}/stop`);
  }, 120_000);
});

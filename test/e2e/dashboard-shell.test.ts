import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDashboard, type TestDashboard } from "../helpers/dashboard.js";
import type { TestSteward } from "../helpers/steward.js";

/** The dashboard served at `/`: sign-in, the sections, client-side routes that survive a reload. */
describe("dashboard shell", () => {
  let dashboard: TestDashboard;
  let t: TestSteward;
  let baseUrl: string;

  beforeAll(async () => {
    dashboard = await startDashboard();
    ({ steward: t, baseUrl } = dashboard);
  });
  afterAll(async () => {
    await dashboard?.close();
  });

  it("refuses a wrong credential and signs in with an API key", async () => {
    const context = await dashboard.browser.browser.newContext({ baseURL: baseUrl });
    const page = await context.newPage();
    await page.goto("/");
    await page.getByLabel("API key or JWT").fill("sk_live_not_a_real_key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByRole("alert").textContent()).toMatch(/invalid|unauthori[sz]ed|key/i);

    await page.getByLabel("API key or JWT").fill(t.adminKey);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("navigation", { name: "Sections" }).waitFor();
    expect(new URL(page.url()).pathname).toBe("/agents");
    await context.close();
  });

  it("opens a client-side route on reload, and keeps the server's own paths", async () => {
    const page = await dashboard.signedInPage();
    const response = await page.goto("/approvals");
    expect(response?.headers()["content-security-policy"]).toContain("default-src 'self'");
    await expect
      .poll(() => page.getByRole("link", { name: "Approvals" }).getAttribute("aria-current"))
      .toBe("page");

    const api = await fetch(`${baseUrl}/api/v1/no-such-route`);
    expect(api.status).toBe(404);
    expect(((await api.json()) as { error: { code: string } }).error.code).toBe("NOT_FOUND");
    const missingAsset = await fetch(`${baseUrl}/assets/missing.js`);
    expect(missingAsset.status).toBe(404);
    const health = await fetch(`${baseUrl}/health`);
    expect(await health.json()).toEqual({ status: "ok" });
    await page.context().close();
  });
});

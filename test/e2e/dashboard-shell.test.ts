import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDashboard, type TestDashboard, WAIT } from "../helpers/dashboard.js";
import type { TestSteward } from "../helpers/steward.js";

const JWT_SECRET = "a-jwt-signing-secret-for-the-dashboard-test";
const JWT_ISSUER = "https://id.example.test/";

/** The dashboard served at `/`: sign-in, the sections, client-side routes that survive a reload. */
describe("dashboard shell", { timeout: 120_000 }, () => {
  let dashboard: TestDashboard;
  let t: TestSteward;
  let baseUrl: string;

  beforeAll(async () => {
    dashboard = await startDashboard({
      STEWARD_JWT_SECRET: JWT_SECRET,
      STEWARD_JWT_ISSUER: JWT_ISSUER,
      STEWARD_JWT_AUDIENCE: "steward",
    });
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
    await expect
      .poll(() => page.getByRole("alert").textContent(), WAIT)
      .toBe("Invalid, expired or revoked credential");

    await page.getByLabel("API key or JWT").fill(t.adminKey);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("navigation", { name: "Sections" }).waitFor();
    expect(new URL(page.url()).pathname).toBe("/agents");
    await context.close();
  });

  it("signs in with a JWT from the identity provider, its live views included", async () => {
    const jwt = await new SignJWT({ org_id: "default", roles: ["viewer"] })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("dana@example.org")
      .setIssuer(JWT_ISSUER)
      .setAudience("steward")
      .setIssuedAt()
      .setExpirationTime("10m")
      .sign(new TextEncoder().encode(JWT_SECRET));
    const context = await dashboard.browser.browser.newContext({ baseURL: baseUrl });
    const page = await context.newPage();
    await page.goto("/managed");
    await page.getByLabel("API key or JWT").fill(jwt);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("navigation", { name: "Sections" }).waitFor();
    await page.getByRole("link", { name: "Managed agents" }).click();
    // The board's WebSocket takes the JWT as its access token.
    await page.getByText("Live", { exact: true }).waitFor(WAIT);
    await context.close();
  });

  it("opens a client-side route on reload, and keeps the server's own paths", async () => {
    const page = await dashboard.signedInPage();
    const response = await page.goto("/approvals");
    expect(response?.headers()["content-security-policy"]).toContain("default-src 'self'");
    await expect
      .poll(() => page.getByRole("link", { name: "Approvals" }).getAttribute("aria-current"))
      .toBe("page");

    // The page by its file name keeps the page's protections.
    const byName = await fetch(`${baseUrl}/index.html`);
    expect(byName.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");

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

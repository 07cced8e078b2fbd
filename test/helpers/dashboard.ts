import type { Page } from "playwright-core";
import { launchBrowser, type TestBrowser } from "./browser.js";
import { serveOnLoopback, startTestSteward, type TestSteward } from "./steward.js";

/** A phone's viewport: every screen must fit its width without scrolling sideways. */
export const PHONE = { width: 375, height: 800 };

/** Upper bounds for waiting on the page (like Playwright's own auto-wait), generous for a busy machine. */
export const WAIT = { timeout: 20_000, interval: 100 };

/** A test Steward serving the dashboard over HTTP, and a browser to open it in. */
export interface TestDashboard {
  steward: TestSteward;
  browser: TestBrowser;
  baseUrl: string;
  /** A new page (in a context of its own) signed in as the admin, or with `credential`, at `viewport`. */
  signedInPage(options?: {
    credential?: string;
    viewport?: { width: number; height: number };
  }): Promise<Page>;
  close(): Promise<void>;
}

/**
 * Starts a Steward on PostgreSQL with `env` and a headless Chromium. With `port`, Steward
 * listens there and is told so through PORT (for agents that report to it); otherwise on
 * any free loopback port.
 */
export async function startDashboard(
  env: Record<string, string> = {},
  options: { port?: number } = {},
): Promise<TestDashboard> {
  const { port } = options;
  const steward = await startTestSteward(
    "postgres",
    port === undefined ? env : { ...env, PORT: String(port) },
  );
  try {
    let baseUrl: string;
    if (port === undefined) baseUrl = await serveOnLoopback(steward);
    else {
      await steward.steward.server.listen({ host: "127.0.0.1", port });
      baseUrl = `http://127.0.0.1:${port}`;
    }
    const browser = await launchBrowser();
    return {
      steward,
      browser,
      baseUrl,
      signedInPage: ({ credential = steward.adminKey, viewport } = {}) =>
        browser.signedInPage(baseUrl, credential, viewport),
      async close() {
        await browser.close();
        await steward.close();
      },
    };
  } catch (error) {
    await steward.close();
    throw error;
  }
}

/**
 * Whether the page fits its viewport's width, that is does not scroll sideways. The
 * expression is a string because it runs in the page, whose DOM types this project does
 * not load.
 */
export function fitsWidth(page: Page): Promise<boolean> {
  return page.evaluate<boolean>("document.documentElement.scrollWidth <= window.innerWidth");
}

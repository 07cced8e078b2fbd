import { type Browser, chromium, type Page } from "playwright-core";

/** Debian's Chromium (`apt-get install -y chromium`); no tool downloads a browser of its own. */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/** Where the screenshots the README links to are written. */
export const SCREENSHOT_DIR = new URL("../../docs/screenshots", import.meta.url).pathname;

export interface TestBrowser {
  browser: Browser;
  /** A new page at `width`×`height`, signed in with `credential` (kept in session storage as the app does). */
  signedInPage(
    baseUrl: string,
    credential: string,
    viewport?: { width: number; height: number },
  ): Promise<Page>;
  close(): Promise<void>;
}

/**
 * Headless Chromium for the dashboard's end-to-end tests. The flags keep it off the
 * network (this machine's is closed; Chromium would otherwise retry Google's hosts).
 */
export async function launchBrowser(): Promise<TestBrowser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    browser,
    async signedInPage(baseUrl, credential, viewport = { width: 1280, height: 900 }) {
      const context = await browser.newContext({ baseURL: baseUrl, viewport });
      // The app keeps the credential in session storage; put it there before any page script runs.
      await context.addInitScript({
        content: `sessionStorage.setItem("steward.credential", ${JSON.stringify(credential)});`,
      });
      return context.newPage();
    },
    async close() {
      await browser.close();
    },
  };
}

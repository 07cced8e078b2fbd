import { type Agent, request } from "undici";
import { httpUrlProblem } from "../agents/http-url.js";
import { ValidationError } from "../errors.js";
import { isBlockedDestination } from "../invocation/address-guard.js";
import { ResponseTooLargeError, readCappedBody, transportErrorCode } from "../invocation/http-exchange.js";

/** Where A2A agents publish their card, under their base URL. */
export const WELL_KNOWN_CARD_PATH = "/.well-known/agent-card.json";
/** No card comes near this; a larger answer is not a card. */
const MAX_CARD_BYTES = 256 * 1024;
const CARD_TIMEOUT_MS = 10_000;

/** The card's address: `cardUrl` itself when it names a JSON file, else its well-known path. */
export function cardAddress(cardUrl: string): string {
  const url = new URL(cardUrl);
  if (url.pathname.endsWith(".json")) return url.href;
  url.pathname = `${url.pathname.replace(/\/+$/, "")}${WELL_KNOWN_CARD_PATH}`;
  return url.href;
}

/**
 * Fetches an Agent Card through the SSRF-guarded `dispatcher`: no redirect followed, at
 * most 256 KiB, 10 s. Every way it can fail is a ValidationError on `card_url`.
 */
export async function fetchAgentCard(
  cardUrl: string,
  dispatcher: Agent,
): Promise<{ url: string; card: unknown }> {
  const problem = httpUrlProblem(cardUrl);
  if (problem !== null) throw cardUrlError(problem);
  const url = cardAddress(cardUrl);
  try {
    const response = await request(url, {
      dispatcher,
      headers: { accept: "application/json" },
      signal: AbortSignal.timeout(CARD_TIMEOUT_MS),
    });
    const body = await readCappedBody(response, MAX_CARD_BYTES);
    if (response.statusCode !== 200) throw cardUrlError(`answered HTTP ${response.statusCode} at ${url}`);
    try {
      return { url, card: JSON.parse(body.toString("utf8")) };
    } catch {
      throw cardUrlError(`answered something that is not JSON at ${url}`);
    }
  } catch (error) {
    if (error instanceof ValidationError) throw error;
    throw cardUrlError(fetchProblem(error));
  }
}

function fetchProblem(error: unknown): string {
  if (isBlockedDestination(error)) return "is refused by the SSRF guard";
  if (error instanceof ResponseTooLargeError) return `answered more than ${MAX_CARD_BYTES / 1024} KiB`;
  if (error instanceof Error && error.name === "TimeoutError")
    return `did not answer within ${CARD_TIMEOUT_MS / 1000} s`;
  return `could not be reached (${transportErrorCode(error)})`;
}

function cardUrlError(message: string): ValidationError {
  return new ValidationError([{ field: "card_url", message }], "The Agent Card could not be fetched");
}

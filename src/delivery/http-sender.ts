import { request } from "undici";
import type { AddressGuard } from "../invocation/address-guard.js";
import { createGuardedAgent } from "../invocation/address-guard.js";
import { closeBefore } from "../shutdown.js";
import type { HttpSender } from "./adapters/adapter.js";

/** Enough of a platform's answer to read its error, never a whole page. */
const MAX_ANSWER_BYTES = 8 * 1024;

/**
 * Sends delivery requests through the SSRF guard (every address checked at connect),
 * without following redirects, within a deadline that covers the whole exchange.
 */
export function createHttpSender(guard: AddressGuard): {
  send: HttpSender;
  close(deadline?: AbortSignal): Promise<void>;
} {
  const dispatcher = createGuardedAgent(guard);
  const send: HttpSender = async (payload, timeoutMs) => {
    const signal = AbortSignal.timeout(timeoutMs);
    const response = await request(payload.url, {
      method: "POST",
      headers: payload.headers,
      body: payload.body,
      dispatcher,
      signal,
    });
    let body = "";
    for await (const chunk of response.body) {
      body += (chunk as Buffer).toString("utf8");
      if (body.length >= MAX_ANSWER_BYTES) {
        response.body.destroy();
        break;
      }
    }
    return {
      statusCode: response.statusCode,
      headers: response.headers,
      body: body.slice(0, MAX_ANSWER_BYTES),
    };
  };
  return { send, close: (deadline) => closeBefore(dispatcher, deadline) };
}

import { retryAfterMs } from "../http/retry-after.js";
import type { DeliveryOutcome, HttpAnswer } from "./adapters/adapter.js";

/**
 * The usual reading of a webhook's answer: 2xx delivered; 408, 429 and 5xx worth
 * another try (honouring Retry-After); anything else final.
 */
export function outcomeOf(answer: HttpAnswer): DeliveryOutcome {
  const { statusCode } = answer;
  if (statusCode >= 200 && statusCode < 300) return { delivered: true, retryable: false, statusCode };
  const retryable = statusCode === 408 || statusCode === 429 || statusCode >= 500;
  return {
    delivered: false,
    retryable,
    statusCode,
    retryAfterMs: retryAfterMs(answer.headers["retry-after"], Date.now()),
    error: `the endpoint answered ${statusCode}`,
  };
}

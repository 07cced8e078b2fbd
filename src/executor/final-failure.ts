import { GraphLimitError } from "./graph-definition.js";
import { ExpressionError } from "./graph-expression.js";
import { LlmError } from "./llm-client.js";

/**
 * An HTTP node's answer of 4xx or 5xx. Only 408, 429 and 5xx can change on a retry; any
 * other 4xx is the same answer next time.
 */
export class HttpNodeStatusError extends Error {
  override name = "HttpNodeStatusError";
  readonly retryable: boolean;

  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.retryable = status === 408 || status === 429 || status >= 500;
  }
}

const FINAL_LLM_CODES = new Set<LlmError["code"]>(["http_error", "provider_error"]);

/**
 * Whether running the job again would meet the same failure, so that it fails at once
 * rather than spending its remaining deliveries: a graph limit, an expression that fails
 * on the state, an HTTP node's 4xx, an LLM provider's refusal. Network errors, 5xx and
 * timeouts are tried again. Node failures arrive wrapped: their causes are looked through.
 */
export function failsAgain(error: unknown): boolean {
  let cause = error;
  for (let depth = 0; depth < 8 && cause instanceof Error; depth++) {
    if (cause instanceof GraphLimitError || cause instanceof ExpressionError) return true;
    if (cause instanceof HttpNodeStatusError) return !cause.retryable;
    // Only the provider's own refusals (a bad key, an unknown model): a stream cut off or
    // garbled, or a call aborted, says nothing of the next one.
    if (cause instanceof LlmError) return !cause.retryable && FINAL_LLM_CODES.has(cause.code);
    cause = cause.cause;
  }
  return false;
}

import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import { type Agent, request as undiciRequest } from "undici";
import { type A2aTransport, callA2a, type InvocationPayload } from "../a2a/a2a-call.js";
import type { AuthType } from "../agents/agent-kinds.js";
import { httpUrlProblem } from "../agents/http-url.js";
import { redactDeep } from "../crypto/redact.js";
import { retryAfterMs } from "../http/retry-after.js";
import { closeBefore } from "../shutdown.js";
import { STEWARD_VERSION } from "../version.js";
import { type AddressGuard, createGuardedAgent, isBlockedDestination } from "./address-guard.js";
import {
  decodeBody,
  isUnsendableRequest,
  ResponseTooLargeError,
  readCappedBody,
  transportErrorCode,
} from "./http-exchange.js";
import {
  type AppliedAuth,
  AuthConfigError,
  applyOutboundAuth,
  OAuth2TokenCache,
  TokenRequestError,
} from "./outbound-auth.js";

/**
 * Calls an external agent over HTTP: one JSON POST, the agent's credentials, a deadline
 * for the whole call, bounded retries of transient failures, no redirects, a capped
 * answer, and every connection through the SSRF guard. An A2A agent gets the same
 * request as A2A JSON-RPC exchanges instead (src/a2a/a2a-call.ts), each one made the same way.
 */

export interface AgentTarget {
  agentId: string;
  url: string;
  authType: AuthType;
  /** Unsealed: plaintext credentials. */
  authConfig: Record<string, unknown>;
  /** Deadline for the whole call: every attempt, every wait between them, and reading the answer. */
  timeoutMs: number;
  /** `webhook` (the default): POST the body as it is; `a2a`: send it as an A2A message. */
  protocol?: "webhook" | "a2a";
}

export interface AgentRequest {
  /**
   * Serialised as JSON once; every attempt sends (and an hmac signature covers) the same bytes.
   * For an A2A target, the invocation service's webhook body, re-expressed as a message.
   */
  body: unknown;
  /** traceparent and the like; the credentials of the auth type win over a header of the same name. */
  headers: Record<string, string>;
  /** Identifies the message on every attempt (webhook-id for hmac), so the agent can drop duplicates. */
  messageId: string;
}

export interface AgentCallResult {
  outcome: "success" | "failure" | "timeout";
  /** Last HTTP status, if any answer came. */
  status?: number;
  /** Parsed JSON when the answer is JSON, else the text; undefined when empty. Truncated bodies are a failure. */
  body?: unknown;
  durationMs: number;
  attempts: number;
  /** Human-readable; never contains credentials or the URL. */
  error?: string;
  /** Whether calling again later may succeed; unset on success. */
  retryable?: boolean;
}

export interface RetryPolicy {
  /** Attempts in all, the first included (default 3). */
  attempts?: number;
  /** Backoff cap of the first retry, doubled for each further one (default 200 ms). */
  baseDelayMs?: number;
  /** Largest backoff cap (default 5 s); a Retry-After from the agent is not bounded by it. */
  maxDelayMs?: number;
}

export interface AgentClientOptions {
  guard: AddressGuard;
  maxResponseBytes: number;
  tokenCache?: OAuth2TokenCache;
  retry?: RetryPolicy;
  /** Waits between attempts; injectable so tests can record delays instead of sleeping. */
  sleep?: (ms: number) => Promise<void>;
}

type AttemptResult =
  | { outcome: "success"; status: number; body: unknown }
  | { outcome: "timeout"; status?: number; error: string }
  | {
      outcome: "failure";
      status?: number;
      body?: unknown;
      error: string;
      retryable: boolean;
      retryAfterMs?: number;
      /** The agent answered 401 to an oauth2 token; forgetting it lets the next attempt fetch a new one. */
      discardToken?: () => void;
    };

const BLOCKED_MESSAGE = "destination refused by the SSRF guard";

/** How long the best-effort A2A `tasks/cancel`, sent after the deadline, may take. */
const LATE_REQUEST_TIMEOUT_MS = 2_000;

export class AgentClient {
  readonly #dispatcher: Agent;
  readonly #maxResponseBytes: number;
  readonly #tokenCache: OAuth2TokenCache;
  readonly #attempts: number;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(options: AgentClientOptions) {
    this.#dispatcher = createGuardedAgent(options.guard);
    this.#maxResponseBytes = options.maxResponseBytes;
    this.#tokenCache = options.tokenCache ?? new OAuth2TokenCache();
    this.#attempts = Math.max(1, options.retry?.attempts ?? 3);
    this.#baseDelayMs = options.retry?.baseDelayMs ?? 200;
    this.#maxDelayMs = options.retry?.maxDelayMs ?? 5_000;
    this.#sleep = options.sleep ?? ((ms) => delay(ms));
  }

  /** POSTs `request.body` as JSON to the agent (or sends it over A2A), retrying transient failures within the deadline. */
  async call(target: AgentTarget, request: AgentRequest): Promise<AgentCallResult> {
    const started = performance.now();
    // Registration validated the URL; this catches one that bypassed it (undici would drop userinfo silently).
    const urlProblem = httpUrlProblem(target.url);
    if (urlProblem !== null) {
      const error = `agent URL ${urlProblem}`;
      return {
        outcome: "failure",
        error,
        retryable: false,
        attempts: 0,
        durationMs: performance.now() - started,
      };
    }
    const deadlineAt = started + target.timeoutMs;
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), target.timeoutMs);
    try {
      const result =
        target.protocol === "a2a"
          ? await this.#callA2a(target, request, deadline.signal, deadlineAt)
          : await this.#exchange(
              target,
              request.headers,
              request.body,
              request.messageId,
              deadline.signal,
              deadlineAt,
            );
      return { ...result, durationMs: performance.now() - started };
    } finally {
      clearTimeout(timer);
    }
  }

  /** The A2A exchanges of one call, each made like a webhook POST (guard, auth, retries, cap, redaction). */
  #callA2a(target: AgentTarget, request: AgentRequest, signal: AbortSignal, deadlineAt: number) {
    const { headers, messageId } = request;
    const transport: A2aTransport = {
      post: (body, id) => this.#exchange(target, headers, body, id, signal, deadlineAt),
      postLate: (body, id) =>
        this.#exchange(target, headers, body, id, AbortSignal.timeout(LATE_REQUEST_TIMEOUT_MS), 0),
      sleep: this.#sleep,
      remainingMs: () => Math.max(0, deadlineAt - performance.now()),
    };
    // The invocation service builds this body; over A2A its facts become a message.
    return callA2a(request.body as InvocationPayload, headers.traceparent, messageId, transport);
  }

  /**
   * POSTs `body` as JSON, retrying transient failures while a retry can end before
   * `deadlineAt` (a `deadlineAt` already past: one attempt only).
   */
  async #exchange(
    target: AgentTarget,
    headers: Record<string, string>,
    body: unknown,
    messageId: string,
    signal: AbortSignal,
    deadlineAt: number,
  ): Promise<Omit<AgentCallResult, "durationMs">> {
    // JSON.stringify(undefined) is undefined, which would send no body and sign nothing.
    const payload = JSON.stringify(body) ?? "null";
    let attempts = 0;
    let tokenRenewed = false;
    for (;;) {
      attempts += 1;
      const result = await this.#attempt(target, headers, messageId, payload, signal);
      if (result.outcome !== "failure" || attempts >= this.#attempts) return toCallResult(result, attempts);
      if (result.discardToken && !tokenRenewed) {
        // A rejected oauth2 token is renewed at once, and only once per request.
        tokenRenewed = true;
        result.discardToken();
        continue;
      }
      const waitMs = result.retryable ? (result.retryAfterMs ?? this.#backoffMs(attempts)) : undefined;
      // Waiting past the deadline would only turn this answer into a timeout.
      if (waitMs === undefined || waitMs >= deadlineAt - performance.now())
        return toCallResult(result, attempts);
      await this.#sleep(waitMs);
    }
  }

  /** Closes the connections; calls after this fail. */
  /** Waits for calls under way, or cuts them once `deadline` passes. */
  async close(deadline?: AbortSignal): Promise<void> {
    await closeBefore(this.#dispatcher, deadline);
  }

  /** Full jitter: uniform in [0, min(max, base · 2^(n−1))], so retrying callers spread out. */
  #backoffMs(failedAttempts: number): number {
    const cap = Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** (failedAttempts - 1));
    return Math.random() * cap;
  }

  async #attempt(
    target: AgentTarget,
    headers: Record<string, string>,
    messageId: string,
    payload: string,
    signal: AbortSignal,
  ): Promise<AttemptResult> {
    let status: number | undefined;
    let auth: AppliedAuth | undefined;
    try {
      auth = await applyOutboundAuth(
        {
          agentId: target.agentId,
          authType: target.authType,
          authConfig: target.authConfig,
          body: payload,
          messageId,
          timestamp: new Date(),
        },
        { dispatcher: this.#dispatcher, signal, tokenCache: this.#tokenCache },
      );
      const response = await undiciRequest(target.url, {
        dispatcher: this.#dispatcher,
        signal,
        method: "POST",
        headers: {
          "user-agent": `Steward/${STEWARD_VERSION}`,
          accept: "application/json",
          ...lowerCaseKeys(headers),
          "content-type": "application/json",
          ...auth.headers,
        },
        body: payload,
      });
      status = response.statusCode;
      const body = decodeBody(
        await readCappedBody(response, this.#maxResponseBytes),
        response.headers["content-type"],
      );
      // An agent that quotes the credential back (an error page echoing the request, say)
      // must not have it stored with the call: the answer is kept without it.
      return judgeAnswer(status, redactDeep(body, auth.secrets), response.headers["retry-after"], auth);
    } catch (error) {
      return judgeError(error, status, signal);
    }
  }
}

function toCallResult(result: AttemptResult, attempts: number): Omit<AgentCallResult, "durationMs"> {
  const common = { outcome: result.outcome, status: result.status, attempts };
  switch (result.outcome) {
    case "success":
      return { ...common, body: result.body };
    case "timeout":
      return { ...common, error: result.error, retryable: true };
    case "failure":
      return { ...common, body: result.body, error: result.error, retryable: result.retryable };
  }
}

function judgeAnswer(
  status: number,
  body: unknown,
  retryAfter: string | string[] | undefined,
  auth: AppliedAuth,
): AttemptResult {
  if (status >= 200 && status < 300) return { outcome: "success", status, body };
  const failure = { outcome: "failure" as const, status, body };
  if (status >= 300 && status < 400) {
    return {
      ...failure,
      error: `agent answered with a redirect (HTTP ${status}), which is not followed`,
      retryable: false,
    };
  }
  if (status === 429 || status >= 500) {
    return {
      ...failure,
      error: `agent answered HTTP ${status}`,
      retryable: true,
      retryAfterMs: retryAfterMs(retryAfter, Date.now()),
    };
  }
  if (status === 401 && auth.discardToken) {
    return {
      ...failure,
      error: "agent answered HTTP 401",
      retryable: false,
      discardToken: auth.discardToken,
    };
  }
  return { ...failure, error: `agent answered HTTP ${status}`, retryable: false };
}

function judgeError(error: unknown, status: number | undefined, signal: AbortSignal): AttemptResult {
  // Checked first: whatever undici reports after an abort, the cause is the deadline.
  if (signal.aborted) return { outcome: "timeout", status, error: "no complete answer before the deadline" };
  const failure = { outcome: "failure" as const, status };
  if (isBlockedDestination(error)) return { ...failure, error: BLOCKED_MESSAGE, retryable: false };
  if (error instanceof ResponseTooLargeError)
    return { ...failure, error: "response too large", retryable: false };
  if (error instanceof AuthConfigError) return { ...failure, error: error.message, retryable: false };
  if (error instanceof TokenRequestError)
    return { ...failure, error: error.message, retryable: error.retryable };
  const code = transportErrorCode(error);
  if (isUnsendableRequest(code)) {
    return { ...failure, error: `request could not be sent (${code})`, retryable: false };
  }
  return { ...failure, error: `network error (${code})`, retryable: true };
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
}

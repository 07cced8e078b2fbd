import type { Platform } from "../../agents/agent-kinds.js";
import type { ConfigSpec } from "../../agents/config-schema.js";

/**
 * One interface for every chat platform Steward delivers invocation results to. An
 * adapter is built by a pure function from the agent's validated (and unsealed)
 * platform config; `format` turns a result into the platform's own request and
 * `deliver` sends it and reads the platform's answer.
 */

/** What happened in one invocation, as a platform message tells it. */
export interface InvocationNotice {
  invocationId: string;
  agentId: string;
  agentName: string;
  /** success, failure, timeout, policy_denied, rate_limited, budget_exceeded */
  status: string;
  /** The agent's output (its `result`/`output` field, or the whole answer). */
  output: unknown;
  error: string | null;
  durationMs: number | null;
  costUsd: number | null;
  traceId: string;
  externalUser: string | null;
  createdAt: Date;
  completedAt: Date;
  /** Its page on the dashboard (from STEWARD_PUBLIC_URL): the call's trace, an approval, a managed agent. */
  dashboardUrl: string;
}

/** A request to a platform, ready to send. `body` is the exact bytes sent (usually JSON). */
export interface DeliveryPayload {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface HttpAnswer {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  /** At most a few KiB: enough to read an error, never a whole page. */
  body: string;
}

/** Sends one request through the SSRF guard, without following redirects. Network failures throw. */
export type HttpSender = (payload: DeliveryPayload, timeoutMs: number) => Promise<HttpAnswer>;

export interface DeliveryOutcome {
  delivered: boolean;
  /** False for answers that will not change on a retry (4xx other than 408 and 429). */
  retryable: boolean;
  statusCode?: number;
  /** From the platform's Retry-After, when it sent one. */
  retryAfterMs?: number;
  /** Human-readable, never containing a credential. */
  error?: string;
}

export interface PlatformAdapter {
  format(notice: InvocationNotice): DeliveryPayload;
  /**
   * Sends `payload` once and reads the platform's answer. Errors thrown by `send`
   * (network, deadline, SSRF refusal) propagate unchanged: the transport's owner
   * knows which of them are worth a retry; the adapter only knows its platform.
   */
  deliver(payload: DeliveryPayload, send: HttpSender, timeoutMs: number): Promise<DeliveryOutcome>;
}

export interface AdapterContext {
  /** Base URL of Steward's dashboard, for "Open" links. */
  publicUrl: string;
  telegramApiUrl: string;
  notionApiUrl: string;
  /** The agent's hmac secret, when its auth type is hmac (custom_http signs with it). */
  signingSecret?: string;
  /** The clock for signature timestamps and Retry-After dates; the system clock when absent. */
  now?: () => Date;
}

/**
 * `create` was given a config it cannot deliver with: a secret still sealed, or a
 * config that never passed the platform's schema. Retrying cannot help. The message
 * names the field, never its value.
 */
export class PlatformConfigError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field} ${problem}`);
    this.name = "PlatformConfigError";
  }
}

export interface AdapterDefinition {
  /** Validates `platform_config` at registration; its secret paths are sealed at rest. */
  configSpec: ConfigSpec;
  /** Whether this config names somewhere to deliver to (teams and custom_http may not). */
  deliversTo(config: Record<string, unknown>): boolean;
  create(config: Record<string, unknown>, context: AdapterContext): PlatformAdapter;
}

/** The registry's type: a platform without an adapter does not compile. */
export type AdapterRegistry = Record<Platform, AdapterDefinition>;

import type { Webhook } from "standardwebhooks";
import { type Dispatcher, request } from "undici";
import type { AuthType } from "../agents/agent-kinds.js";
import { httpUrlProblem } from "../agents/http-url.js";
import { webhookSigner } from "../crypto/webhook-signer.js";
import { FRAMING_HEADERS } from "../http/outbound-headers.js";
import { isBlockedDestination } from "./address-guard.js";
import { decodeBody, ResponseTooLargeError, readCappedBody, transportErrorCode } from "./http-exchange.js";

/**
 * Turns an agent's plaintext `auth_config` into the headers of one outbound request.
 * Values are never put into error messages: an error names the field, not its content.
 */

/** `auth_config` lacks what its auth type needs; retrying cannot help. */
export class AuthConfigError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`auth_config.${field} ${problem}`);
    this.name = "AuthConfigError";
  }
}

/** The OAuth2 token endpoint did not issue a usable token. */
export class TokenRequestError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "TokenRequestError";
  }
}

export interface OutboundAuthRequest {
  agentId: string;
  authType: AuthType;
  /** Unsealed: plaintext credentials. */
  authConfig: Record<string, unknown>;
  /** The exact body sent, which an hmac signature covers. */
  body: string;
  /** Sent as webhook-id, the same on every retry, so the agent can drop duplicates. */
  messageId: string;
  timestamp: Date;
}

/** What an oauth2 token request shares with the call it serves: dispatcher, deadline and cache. */
export interface OutboundAuthIO {
  dispatcher: Dispatcher;
  signal: AbortSignal;
  tokenCache: OAuth2TokenCache;
}

export interface AppliedAuth {
  /** Lower-case names. */
  headers: Record<string, string>;
  /** The secrets in or behind those headers, in every form an agent could quote them back. */
  secrets: string[];
  /** oauth2 only: forgets the token just used, after the agent rejected it with 401. */
  discardToken?: () => void;
}

/** Credentials for one request, as the agent's auth type prescribes. */
export async function applyOutboundAuth(req: OutboundAuthRequest, io: OutboundAuthIO): Promise<AppliedAuth> {
  const config = req.authConfig;
  switch (req.authType) {
    case "none":
      return { headers: {}, secrets: [] };
    case "api_key": {
      const key = stringField(config, "key");
      return { headers: { [headerName(config, "X-API-Key")]: key }, secrets: [key] };
    }
    case "bearer_token": {
      const token = stringField(config, "token");
      return { headers: { authorization: `Bearer ${token}` }, secrets: [token] };
    }
    case "basic":
      return basicAuth(config);
    case "custom": {
      const headers = customHeaders(config);
      return { headers, secrets: Object.values(headers) };
    }
    case "hmac":
      return { headers: hmacHeaders(config, req), secrets: [stringField(config, "secret")] };
    case "oauth2": {
      const credentials = oauth2Credentials(config);
      const token = await io.tokenCache.accessToken(req.agentId, credentials, io);
      return {
        headers: { authorization: `Bearer ${token}` },
        secrets: [token, credentials.clientSecret],
        discardToken: () => io.tokenCache.invalidate(req.agentId, credentials, token),
      };
    }
  }
}

function stringField(config: Record<string, unknown>, field: string): string {
  const value = config[field];
  // A sealed value reaching here means the caller forgot to unseal; it must not be sent.
  if (typeof value !== "string" || value === "")
    throw new AuthConfigError(field, "must be a non-empty string");
  return value;
}

function optionalStringField(config: Record<string, unknown>, field: string): string | undefined {
  return config[field] === undefined ? undefined : stringField(config, field);
}

function headerName(config: Record<string, unknown>, fallback: string): string {
  return (optionalStringField(config, "header_name") ?? fallback).toLowerCase();
}

function basicAuth(config: Record<string, unknown>): AppliedAuth {
  const username = stringField(config, "username");
  // RFC 7617: the first colon ends the user name, so one inside it would change who logs in.
  if (username.includes(":")) throw new AuthConfigError("username", "must not contain a colon");
  const password = stringField(config, "password");
  const encoded = Buffer.from(`${username}:${password}`, "utf8").toString("base64");
  return { headers: { authorization: `Basic ${encoded}` }, secrets: [password, encoded] };
}

function customHeaders(config: Record<string, unknown>): Record<string, string> {
  const map = config.headers;
  if (typeof map !== "object" || map === null) throw new AuthConfigError("headers", "must be an object");
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(map)) {
    const lower = name.toLowerCase();
    if (FRAMING_HEADERS.has(lower)) throw new AuthConfigError(`headers.${name}`, "is set by Steward itself");
    if (typeof value !== "string") throw new AuthConfigError(`headers.${name}`, "must be a string");
    headers[lower] = value;
  }
  return headers;
}

/**
 * Standard Webhooks headers: webhook-id, webhook-timestamp and a v1 HMAC-SHA256
 * signature over both and the body. A whsec_ secret carries base64 key bytes; any
 * other string is used as its UTF-8 bytes.
 */
export function standardWebhookHeaders(
  secret: string,
  messageId: string,
  timestamp: Date,
  body: string,
  signatureHeader = "webhook-signature",
): Record<string, string> {
  let webhook: Webhook;
  try {
    webhook = webhookSigner(secret);
  } catch {
    throw new AuthConfigError("secret", "is not a valid whsec_ secret");
  }
  return {
    "webhook-id": messageId,
    "webhook-timestamp": String(Math.floor(timestamp.getTime() / 1000)),
    [signatureHeader]: webhook.sign(messageId, timestamp, body),
  };
}

function hmacHeaders(config: Record<string, unknown>, req: OutboundAuthRequest): Record<string, string> {
  return standardWebhookHeaders(
    stringField(config, "secret"),
    req.messageId,
    req.timestamp,
    req.body,
    headerName(config, "webhook-signature"),
  );
}

export interface OAuth2Credentials {
  clientId: string;
  clientSecret: string;
  tokenUrl: string;
  scope?: string;
  audience?: string;
}

function oauth2Credentials(config: Record<string, unknown>): OAuth2Credentials {
  const tokenUrl = stringField(config, "token_url");
  const problem = httpUrlProblem(tokenUrl);
  if (problem !== null) throw new AuthConfigError("token_url", problem);
  return {
    clientId: stringField(config, "client_id"),
    clientSecret: stringField(config, "client_secret"),
    tokenUrl,
    scope: optionalStringField(config, "scope"),
    audience: optionalStringField(config, "audience"),
  };
}

interface IssuedToken {
  accessToken: string;
  lifetimeMs: number;
}

interface PendingToken {
  state: "pending";
  issued: Promise<IssuedToken>;
  controller: AbortController;
  waiters: number;
}

type CacheEntry = { state: "ready"; accessToken: string; expiresAt: number } | PendingToken;

export interface OAuth2TokenCacheOptions {
  /** Milliseconds since the epoch; passed in so expiry tests need no sleeping. */
  now?: () => number;
  /** A token is renewed this long before the expiry its issuer announced. */
  safetyMarginMs?: number;
}

/**
 * Client-credentials tokens per agent, token endpoint and client. Concurrent calls share
 * one token request, which runs as long as any of them still waits for it.
 */
export class OAuth2TokenCache {
  readonly #entries = new Map<string, CacheEntry>();
  readonly #now: () => number;
  readonly #safetyMarginMs: number;

  constructor(options: OAuth2TokenCacheOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#safetyMarginMs = options.safetyMarginMs ?? 30_000;
  }

  /** A token the issuer still considers valid: cached, or fetched through `io.dispatcher`. */
  async accessToken(agentId: string, credentials: OAuth2Credentials, io: OutboundAuthIO): Promise<string> {
    io.signal.throwIfAborted();
    const key = cacheKey(agentId, credentials);
    const entry = this.#entries.get(key);
    if (entry?.state === "ready" && entry.expiresAt > this.#now()) return entry.accessToken;
    const pending = entry?.state === "pending" ? entry : this.#fetch(key, credentials, io.dispatcher);
    return (await waitFor(pending, io.signal)).accessToken;
  }

  /** Forgets `rejectedToken`; a token fetched since by another call is kept. */
  invalidate(agentId: string, credentials: OAuth2Credentials, rejectedToken: string): void {
    const key = cacheKey(agentId, credentials);
    const entry = this.#entries.get(key);
    if (entry?.state === "ready" && entry.accessToken === rejectedToken) this.#entries.delete(key);
  }

  #fetch(key: string, credentials: OAuth2Credentials, dispatcher: Dispatcher): PendingToken {
    this.#evictExpired();
    const controller = new AbortController();
    const pending: PendingToken = {
      state: "pending",
      issued: requestToken(credentials, dispatcher, controller.signal),
      controller,
      waiters: 0,
    };
    this.#entries.set(key, pending);
    pending.issued.then(
      ({ accessToken, lifetimeMs }) => {
        if (this.#entries.get(key) !== pending) return;
        const usableMs = lifetimeMs - this.#safetyMarginMs;
        if (usableMs > 0) {
          this.#entries.set(key, { state: "ready", accessToken, expiresAt: this.#now() + usableMs });
        } else {
          this.#entries.delete(key);
        }
      },
      () => {
        if (this.#entries.get(key) === pending) this.#entries.delete(key);
      },
    );
    return pending;
  }

  /** Agents come and go; their tokens should not stay in memory for ever. */
  #evictExpired(): void {
    const now = this.#now();
    for (const [key, entry] of this.#entries) {
      if (entry.state === "ready" && entry.expiresAt <= now) this.#entries.delete(key);
    }
  }
}

function cacheKey(agentId: string, credentials: OAuth2Credentials): string {
  const { tokenUrl, clientId, scope, audience } = credentials;
  return JSON.stringify([agentId, tokenUrl, clientId, scope ?? null, audience ?? null]);
}

/** Waits for a shared token request until `signal` gives up; the last waiter to leave stops it. */
async function waitFor(pending: PendingToken, signal: AbortSignal): Promise<IssuedToken> {
  pending.waiters += 1;
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([pending.issued, aborted]);
  } finally {
    signal.removeEventListener("abort", onAbort);
    pending.waiters -= 1;
    if (pending.waiters === 0) pending.controller.abort();
  }
}

const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024;
/** RFC 6749 leaves expires_in optional; without it a token is renewed after five minutes (or on 401). */
const DEFAULT_TOKEN_LIFETIME_MS = 300_000;

async function requestToken(
  credentials: OAuth2Credentials,
  dispatcher: Dispatcher,
  signal: AbortSignal,
): Promise<IssuedToken> {
  const form = new URLSearchParams({
    grant_type: "client_credentials",
    client_id: credentials.clientId,
    client_secret: credentials.clientSecret,
  });
  if (credentials.scope !== undefined) form.set("scope", credentials.scope);
  if (credentials.audience !== undefined) form.set("audience", credentials.audience);

  let status: number;
  let bytes: Buffer;
  try {
    const response = await request(credentials.tokenUrl, {
      dispatcher,
      signal,
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: form.toString(),
    });
    status = response.statusCode;
    bytes = await readCappedBody(response, MAX_TOKEN_RESPONSE_BYTES);
  } catch (error) {
    // The caller tells a deadline or an SSRF refusal apart from an endpoint failure.
    if (signal.aborted || isBlockedDestination(error)) throw error;
    const tooLarge = error instanceof ResponseTooLargeError;
    const reason = tooLarge ? "response too large" : `network error (${transportErrorCode(error)})`;
    throw new TokenRequestError(`OAuth2 token request failed: ${reason}`, !tooLarge, { cause: error });
  }

  // Some issuers label JSON as text/plain; the grant's answer is JSON by definition.
  const body = decodeBody(bytes, "application/json");
  const fields: Record<string, unknown> = typeof body === "object" && body !== null ? { ...body } : {};
  if (status < 200 || status >= 300) {
    const code =
      typeof fields.error === "string" && /^[\w.-]{1,64}$/.test(fields.error) ? `: ${fields.error}` : "";
    throw new TokenRequestError(
      `OAuth2 token endpoint answered HTTP ${status}${code}`,
      status === 429 || status >= 500,
    );
  }
  if (typeof fields.access_token !== "string" || fields.access_token === "") {
    throw new TokenRequestError("OAuth2 token response has no access_token", false);
  }
  if (fields.token_type !== undefined && String(fields.token_type).toLowerCase() !== "bearer") {
    throw new TokenRequestError("OAuth2 token response is not a Bearer token", false);
  }
  const expiresIn = Number(fields.expires_in);
  return {
    accessToken: fields.access_token,
    lifetimeMs: Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn * 1000 : DEFAULT_TOKEN_LIFETIME_MS,
  };
}

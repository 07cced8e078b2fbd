import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AuthType } from "../../src/agents/agent-kinds.js";
import { retryAfterMs } from "../../src/http/retry-after.js";
import { AddressGuard } from "../../src/invocation/address-guard.js";
import {
  type AgentCallResult,
  AgentClient,
  type AgentClientOptions,
  type AgentTarget,
} from "../../src/invocation/agent-client.js";
import { OAuth2TokenCache } from "../../src/invocation/outbound-auth.js";
import { startDnsServer, type TestDnsServer } from "../helpers/dns-server.js";
import { connectableCorpus } from "../helpers/ssrf-corpus.js";

/**
 * AgentClient against local HTTP servers standing in for agents and token endpoints.
 * Only 127.0.0.1 is ever contacted: the guard used for the mocks allows exactly
 * 127.0.0.1/32, and a guard without allowances must never reach them.
 */

interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface MockServer {
  url: string;
  port: number;
  requests: Recorded[];
  close(): Promise<void>;
}

type Handler = (request: Recorded, response: ServerResponse, index: number) => void;

const servers: MockServer[] = [];
const clients: AgentClient[] = [];

async function startServer(handler: Handler = (_request, response) => json(response, 200, { ok: true })) {
  const requests: Recorded[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const recorded = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      };
      requests.push(recorded);
      handler(recorded, res, requests.length - 1);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const mock: MockServer = {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  servers.push(mock);
  return mock;
}

function json(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  response.writeHead(status, { "content-type": "application/json", ...headers });
  response.end(JSON.stringify(body));
}

const LOCAL_ONLY = new AddressGuard({ kind: "cidrs", cidrs: ["127.0.0.1/32"] });
const NO_PRIVATE = new AddressGuard({ kind: "none" });

interface Harness {
  client: AgentClient;
  delays: number[];
}

function harness(options: Partial<AgentClientOptions> = {}): Harness {
  const delays: number[] = [];
  const client = new AgentClient({
    guard: LOCAL_ONLY,
    maxResponseBytes: 64 * 1024,
    sleep: async (ms) => {
      delays.push(ms);
    },
    ...options,
  });
  clients.push(client);
  return { client, delays };
}

function target(
  url: string,
  authType: AuthType = "none",
  authConfig: Record<string, unknown> = {},
): AgentTarget {
  return { agentId: "agt_test", url, authType, authConfig, timeoutMs: 5_000 };
}

const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const BODY = {
  input: { text: "hello" },
  context: {},
  metadata: { source: "test" },
  invocation_id: "inv_01",
  trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
  external_user: null,
};
const REQUEST = { body: BODY, headers: { traceparent: TRACEPARENT }, messageId: "inv_01" };

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

describe("AgentClient: the request", () => {
  it("POSTs the body as JSON with traceparent and Steward's user agent", async () => {
    const agent = await startServer((_request, response) => json(response, 200, { output: "hi" }));
    const { client } = harness();
    const result = await client.call(target(`${agent.url}/invoke?x=1`), REQUEST);

    expect(result).toMatchObject({ outcome: "success", status: 200, body: { output: "hi" }, attempts: 1 });
    const [seen] = agent.requests;
    expect(seen?.method).toBe("POST");
    expect(seen?.url).toBe("/invoke?x=1");
    expect(JSON.parse(seen?.body ?? "")).toEqual(BODY);
    expect(seen?.headers).toMatchObject({
      "content-type": "application/json",
      traceparent: TRACEPARENT,
      "user-agent": expect.stringMatching(/^Steward\//),
    });
    expect(seen?.headers.authorization).toBeUndefined();
  });

  it("returns a text answer as text and an empty one as undefined", async () => {
    const agent = await startServer((_request, response, index) => {
      if (index === 0) {
        response.writeHead(200, { "content-type": "text/plain" });
        response.end("plain words");
      } else {
        response.writeHead(204);
        response.end();
      }
    });
    const { client } = harness();
    expect((await client.call(target(agent.url), REQUEST)).body).toBe("plain words");
    expect(await client.call(target(agent.url), REQUEST)).toMatchObject({ outcome: "success", status: 204 });
    expect((await client.call(target(agent.url), REQUEST)).body).toBeUndefined();
  });
});

describe("AgentClient: credentials by auth type", () => {
  it.each([
    ["api_key", { key: "ak_secret_1" }, { "x-api-key": "ak_secret_1" }],
    ["api_key", { key: "ak_secret_2", header_name: "X-Agent-Key" }, { "x-agent-key": "ak_secret_2" }],
    ["bearer_token", { token: "tok_secret_3" }, { authorization: "Bearer tok_secret_3" }],
    [
      "basic",
      { username: "steward", password: "pässword" },
      { authorization: `Basic ${Buffer.from("steward:pässword").toString("base64")}` },
    ],
    [
      "custom",
      { headers: { "X-Tenant": "acme", "X-Secret": "custom_4" } },
      { "x-tenant": "acme", "x-secret": "custom_4" },
    ],
  ] as const)("%s: the agent sees %o", async (authType, authConfig, expected) => {
    const agent = await startServer();
    const { client } = harness();
    const result = await client.call(target(agent.url, authType, authConfig), REQUEST);
    expect(result.outcome).toBe("success");
    expect(agent.requests[0]?.headers).toMatchObject(expected);
  });

  it.each([
    ["bearer_token", { token: "tok_secret_echoed" }, ["tok_secret_echoed"]],
    [
      "basic",
      { username: "steward", password: "pw_secret_echoed" },
      ["pw_secret_echoed", Buffer.from("steward:pw_secret_echoed").toString("base64")],
    ],
    ["custom", { headers: { "X-Secret": "custom_secret_echoed" } }, ["custom_secret_echoed"]],
  ] as const)(
    "%s: an answer quoting the credential back keeps it out of the result",
    async (authType, authConfig, secrets) => {
      // An error page echoing the request's headers, as some frameworks write them.
      const agent = await startServer((request, response) =>
        json(response, 401, { error: `rejected ${JSON.stringify(request.headers)}`, [secrets[0]]: true }),
      );
      const { client } = harness();
      const result = await client.call(target(agent.url, authType, authConfig), REQUEST);
      expect(result).toMatchObject({ outcome: "failure", status: 401 });
      const kept = JSON.stringify(result);
      for (const secret of secrets) expect(kept).not.toContain(secret);
      expect(kept).toContain("[redacted]");
    },
  );

  it("refuses custom headers that frame the request, without sending anything or quoting the value", async () => {
    const agent = await startServer();
    const { client } = harness();
    const result = await client.call(
      target(agent.url, "custom", { headers: { Host: "internal.secret" } }),
      REQUEST,
    );
    expect(result).toMatchObject({ outcome: "failure", retryable: false, attempts: 1 });
    expect(result.error).toContain("auth_config.headers.Host");
    expect(result.error).not.toContain("internal.secret");
    expect(agent.requests).toHaveLength(0);
  });

  it("refuses a sealed (not unsealed) credential instead of sending it", async () => {
    const agent = await startServer();
    const { client } = harness();
    const sealed = { $sealed: "v1.abc", hint: "abcd" };
    const result = await client.call(target(agent.url, "bearer_token", { token: sealed }), REQUEST);
    expect(result).toMatchObject({
      outcome: "failure",
      retryable: false,
      error: "auth_config.token must be a non-empty string",
    });
    expect(agent.requests).toHaveLength(0);
  });

  describe("hmac (Standard Webhooks)", () => {
    const whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    it("signs with a whsec_ secret; the agent verifies with the standardwebhooks package", async () => {
      const agent = await startServer();
      const { client } = harness();
      await client.call(target(agent.url, "hmac", { secret: whsec }), REQUEST);
      const [seen] = agent.requests;
      const headers = seen?.headers as Record<string, string>;
      expect(headers["webhook-id"]).toBe("inv_01");
      expect(Number(headers["webhook-timestamp"])).toBeCloseTo(Date.now() / 1000, -1);
      expect(new Webhook(whsec).verify(seen?.body ?? "", headers)).toEqual(BODY);
    });

    it("signs with a raw secret as its bytes", async () => {
      const agent = await startServer();
      const { client } = harness();
      await client.call(target(agent.url, "hmac", { secret: "raw-shared-secret" }), REQUEST);
      const [seen] = agent.requests;
      const headers = seen?.headers as Record<string, string>;
      expect(new Webhook("raw-shared-secret", { format: "raw" }).verify(seen?.body ?? "", headers)).toEqual(
        BODY,
      );
      expect(() => new Webhook(whsec).verify(seen?.body ?? "", headers)).toThrow();
    });

    it("puts the signature under header_name when set", async () => {
      const agent = await startServer();
      const { client } = harness();
      await client.call(
        target(agent.url, "hmac", { secret: whsec, header_name: "X-Steward-Signature" }),
        REQUEST,
      );
      const headers = agent.requests[0]?.headers as Record<string, string>;
      expect(headers["webhook-signature"]).toBeUndefined();
      const { "x-steward-signature": signature = "", ...rest } = headers;
      expect(
        new Webhook(whsec).verify(agent.requests[0]?.body ?? "", { ...rest, "webhook-signature": signature }),
      ).toEqual(BODY);
    });

    it("re-signs every retry under the same webhook-id", async () => {
      const agent = await startServer((_request, response, index) =>
        json(response, index === 0 ? 503 : 200, {}),
      );
      const { client } = harness();
      const result = await client.call(target(agent.url, "hmac", { secret: whsec }), REQUEST);
      expect(result).toMatchObject({ outcome: "success", attempts: 2 });
      for (const seen of agent.requests) {
        expect(seen.headers["webhook-id"]).toBe("inv_01");
        expect(() =>
          new Webhook(whsec).verify(seen.body, seen.headers as Record<string, string>),
        ).not.toThrow();
      }
    });

    it("refuses a malformed whsec_ secret", async () => {
      const agent = await startServer();
      const { client } = harness();
      const result = await client.call(target(agent.url, "hmac", { secret: "whsec_" }), REQUEST);
      expect(result).toMatchObject({ outcome: "failure", retryable: false });
      expect(agent.requests).toHaveLength(0);
    });
  });

  describe("oauth2 client credentials", () => {
    const CLIENT_SECRET = "client-secret-CANARY-9999";

    async function tokenServer(expiresIn = 3600) {
      return startServer((_request, response, index) =>
        json(response, 200, {
          access_token: `token-${index + 1}`,
          token_type: "Bearer",
          expires_in: expiresIn,
        }),
      );
    }

    function oauthTarget(agentUrl: string, tokenUrl: string) {
      return target(agentUrl, "oauth2", {
        client_id: "steward",
        client_secret: CLIENT_SECRET,
        token_url: tokenUrl,
        scope: "agents.invoke",
        audience: "https://agent.example",
      });
    }

    it("sends the grant as a form and calls the token endpoint once for many calls", async () => {
      const idp = await tokenServer();
      const agent = await startServer();
      const { client } = harness();
      const call = () => client.call(oauthTarget(agent.url, `${idp.url}/oauth/token`), REQUEST);

      const concurrent = await Promise.all(Array.from({ length: 5 }, call));
      const sequential = [await call(), await call(), await call()];

      expect([...concurrent, ...sequential].every((result) => result.outcome === "success")).toBe(true);
      expect(idp.requests).toHaveLength(1);
      const [grant] = idp.requests;
      expect(grant?.url).toBe("/oauth/token");
      expect(grant?.headers["content-type"]).toBe("application/x-www-form-urlencoded");
      expect(Object.fromEntries(new URLSearchParams(grant?.body))).toEqual({
        grant_type: "client_credentials",
        client_id: "steward",
        client_secret: CLIENT_SECRET,
        scope: "agents.invoke",
        audience: "https://agent.example",
      });
      expect(agent.requests.map((seen) => seen.headers.authorization)).toEqual(
        Array(8).fill("Bearer token-1"),
      );
    });

    it("renews the token once when the agent answers 401", async () => {
      const idp = await tokenServer();
      const agent = await startServer((request, response) =>
        json(response, request.headers.authorization === "Bearer token-1" ? 401 : 200, {}),
      );
      const { client, delays } = harness();
      const result = await client.call(oauthTarget(agent.url, `${idp.url}/token`), REQUEST);

      expect(result).toMatchObject({ outcome: "success", attempts: 2 });
      expect(idp.requests).toHaveLength(2);
      expect(agent.requests.map((seen) => seen.headers.authorization)).toEqual([
        "Bearer token-1",
        "Bearer token-2",
      ]);
      expect(delays).toEqual([]);
    });

    it("gives up after one renewal when the agent keeps answering 401", async () => {
      const idp = await tokenServer();
      const agent = await startServer((_request, response) => json(response, 401, { error: "nope" }));
      const { client } = harness();
      const result = await client.call(oauthTarget(agent.url, `${idp.url}/token`), REQUEST);

      expect(result).toMatchObject({ outcome: "failure", status: 401, attempts: 2, retryable: false });
      expect(idp.requests).toHaveLength(2);
    });

    it("renews a token shortly before the expiry its issuer announced", async () => {
      const idp = await tokenServer(60);
      const agent = await startServer();
      let now = 1_000_000;
      const { client } = harness({
        tokenCache: new OAuth2TokenCache({ now: () => now, safetyMarginMs: 30_000 }),
      });
      const call = () => client.call(oauthTarget(agent.url, `${idp.url}/token`), REQUEST);

      await call();
      now += 29_000;
      await call();
      expect(idp.requests).toHaveLength(1);
      now += 2_000; // 31 s after issue: inside the 30 s margin before the 60 s expiry
      await call();
      expect(idp.requests).toHaveLength(2);
    });

    it("reports a refused grant without the secret and without calling the agent", async () => {
      const idp = await startServer((_request, response) => json(response, 401, { error: "invalid_client" }));
      const agent = await startServer();
      const { client } = harness();
      const result = await client.call(oauthTarget(agent.url, `${idp.url}/token`), REQUEST);

      expect(result).toMatchObject({ outcome: "failure", retryable: false, attempts: 1 });
      expect(result.error).toBe("OAuth2 token endpoint answered HTTP 401: invalid_client");
      expect(JSON.stringify(result)).not.toContain(CLIENT_SECRET);
      expect(agent.requests).toHaveLength(0);
    });

    it("retries a token endpoint that fails transiently", async () => {
      const idp = await startServer((_request, response, index) =>
        index === 0 ? json(response, 503, {}) : json(response, 200, { access_token: "late", expires_in: 60 }),
      );
      const agent = await startServer();
      const { client, delays } = harness();
      const result = await client.call(oauthTarget(agent.url, `${idp.url}/token`), REQUEST);

      expect(result).toMatchObject({ outcome: "success", attempts: 2 });
      expect(delays).toHaveLength(1);
      expect(agent.requests[0]?.headers.authorization).toBe("Bearer late");
    });
  });
});

describe("AgentClient: retries", () => {
  it("500, 500, 200: three attempts and a success, with jittered backoff", async () => {
    const agent = await startServer((_request, response, index) =>
      json(response, index < 2 ? 500 : 200, { index }),
    );
    const { client, delays } = harness({ retry: { baseDelayMs: 100, maxDelayMs: 1_000 } });
    const result = await client.call(target(agent.url), REQUEST);

    expect(result).toMatchObject({ outcome: "success", status: 200, attempts: 3, body: { index: 2 } });
    expect(delays).toHaveLength(2);
    expect(delays[0]).toBeLessThanOrEqual(100);
    expect(delays[1]).toBeLessThanOrEqual(200);
  });

  it("stops after three attempts and says the failure is retryable", async () => {
    const agent = await startServer((_request, response) => json(response, 502, { error: "down" }));
    const { client } = harness();
    const result = await client.call(target(agent.url), REQUEST);

    expect(result).toMatchObject({
      outcome: "failure",
      status: 502,
      attempts: 3,
      retryable: true,
      body: { error: "down" },
      error: "agent answered HTTP 502",
    });
    expect(agent.requests).toHaveLength(3);
  });

  it("honours Retry-After in seconds on 429", async () => {
    const agent = await startServer((_request, response, index) =>
      index === 0 ? json(response, 429, {}, { "retry-after": "1" }) : json(response, 200, {}),
    );
    const { client, delays } = harness();
    const result = await client.call(target(agent.url), REQUEST);

    expect(result).toMatchObject({ outcome: "success", attempts: 2 });
    expect(delays).toEqual([1_000]);
  });

  it("honours Retry-After as an HTTP date", async () => {
    const agent = await startServer((_request, response, index) =>
      index === 0
        ? json(response, 503, {}, { "retry-after": new Date(Date.now() + 3_000).toUTCString() })
        : json(response, 200, {}),
    );
    const { client, delays } = harness();
    await client.call(target(agent.url), REQUEST);

    expect(delays).toHaveLength(1);
    expect(delays[0]).toBeGreaterThan(1_000);
    expect(delays[0]).toBeLessThanOrEqual(3_000);
  });

  it("does not wait for a Retry-After beyond the deadline", async () => {
    const agent = await startServer((_request, response) => json(response, 429, {}, { "retry-after": "60" }));
    const { client, delays } = harness();
    const result = await client.call({ ...target(agent.url), timeoutMs: 2_000 }, REQUEST);

    expect(result).toMatchObject({ outcome: "failure", status: 429, attempts: 1, retryable: true });
    expect(delays).toEqual([]);
  });

  it("parses Retry-After forms", () => {
    const now = Date.parse("2025-01-01T00:00:00Z");
    expect(retryAfterMs("120", now)).toBe(120_000);
    expect(retryAfterMs("Wed, 01 Jan 2025 00:00:05 GMT", now)).toBe(5_000);
    expect(retryAfterMs("Tue, 31 Dec 2024 00:00:00 GMT", now)).toBe(0);
    expect(retryAfterMs("soon", now)).toBeUndefined();
    expect(retryAfterMs(undefined, now)).toBeUndefined();
  });

  it.each([400, 404, 422])("%i: one attempt, not retryable, body kept", async (status) => {
    const agent = await startServer((_request, response) => json(response, status, { error: "bad input" }));
    const { client, delays } = harness();
    const result = await client.call(target(agent.url), REQUEST);

    expect(result).toMatchObject({
      outcome: "failure",
      status,
      attempts: 1,
      retryable: false,
      body: { error: "bad input" },
    });
    expect(delays).toEqual([]);
  });

  it("retries network errors: a connection refused", async () => {
    const closed = await startServer();
    await closed.close();
    const { client, delays } = harness();
    const result = await client.call(target(closed.url), REQUEST);

    expect(result).toMatchObject({
      outcome: "failure",
      attempts: 3,
      retryable: true,
      error: "network error (ECONNREFUSED)",
    });
    expect(result.status).toBeUndefined();
    expect(delays).toHaveLength(2);
  });

  it("retries network errors: a connection dropped before the answer", async () => {
    const agent = await startServer((_request, response, index) => {
      if (index === 0) response.socket?.destroy();
      else json(response, 200, { recovered: true });
    });
    const { client } = harness();
    const result = await client.call(target(agent.url), REQUEST);

    expect(result).toMatchObject({ outcome: "success", attempts: 2, body: { recovered: true } });
  });
});

describe("AgentClient: deadline, redirects and size", () => {
  it("times out an agent that never answers, at the deadline", async () => {
    const agent = await startServer(() => {});
    const { client } = harness();
    const result = await client.call({ ...target(agent.url), timeoutMs: 300 }, REQUEST);

    expect(result).toMatchObject({ outcome: "timeout", attempts: 1, retryable: true });
    expect(result.durationMs).toBeGreaterThanOrEqual(250);
    expect(result.durationMs).toBeLessThan(1_000);
  });

  it("times out a body that trickles in, counting the body against the deadline", async () => {
    const agent = await startServer((_request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.write("[");
      const timer = setInterval(() => response.write("1,"), 50);
      response.on("close", () => clearInterval(timer));
    });
    const { client } = harness();
    const result = await client.call({ ...target(agent.url), timeoutMs: 300 }, REQUEST);

    expect(result).toMatchObject({ outcome: "timeout", status: 200, attempts: 1 });
    expect(result.durationMs).toBeLessThan(1_000);
  });

  it("keeps retries and real backoff inside the deadline", async () => {
    const agent = await startServer((_request, response) => setTimeout(() => json(response, 500, {}), 100));
    const client = new AgentClient({
      guard: LOCAL_ONLY,
      maxResponseBytes: 1024,
      retry: { baseDelayMs: 400 },
    });
    clients.push(client);
    const result = await client.call({ ...target(agent.url), timeoutMs: 450 }, REQUEST);

    expect(["failure", "timeout"]).toContain(result.outcome);
    // Without the deadline, three attempts and two backoffs take 1.5 s or more.
    expect(result.durationMs).toBeLessThan(1_000);
  });

  it("does not follow a redirect, not even to an allowed address", async () => {
    const canary = await startServer();
    const agent = await startServer((_request, response) => {
      response.writeHead(307, { location: `${canary.url}/stolen` });
      response.end();
    });
    const { client } = harness();
    const result = await client.call(target(agent.url), REQUEST);

    expect(result).toMatchObject({ outcome: "failure", status: 307, attempts: 1, retryable: false });
    expect(result.error).toMatch(/redirect/);
    expect(canary.requests).toHaveLength(0);
  });

  it.each([
    ["declared by Content-Length", true],
    ["streamed without a length", false],
  ])("refuses an oversized body %s without reading it all", async (_label, declared) => {
    const size = 50 * 1024 * 1024;
    let sent = 0;
    const agent = await startServer((_request, response) => {
      response.writeHead(200, {
        "content-type": "application/json",
        ...(declared ? { "content-length": String(size) } : {}),
      });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        while (sent < size && !response.destroyed) {
          sent += chunk.length;
          if (!response.write(chunk)) return void response.once("drain", pump);
        }
        response.end();
      };
      pump();
    });
    const { client } = harness();
    const result = await client.call(target(agent.url), REQUEST);

    expect(result).toMatchObject({
      outcome: "failure",
      status: 200,
      error: "response too large",
      retryable: false,
    });
    expect(result.body).toBeUndefined();
    // The client hung up: the agent could not push the whole 50 MB.
    expect(sent).toBeLessThan(size);
  });
});

describe("AgentClient: the SSRF guard at connect time", () => {
  let canary: MockServer;
  let dns: TestDnsServer;

  beforeAll(async () => {
    dns = await startDnsServer({ "canary.steward.test": ["127.0.0.1"] });
  });
  afterAll(() => dns.close());

  const expectRefused = (result: AgentCallResult) =>
    expect(result).toMatchObject({
      outcome: "failure",
      retryable: false,
      error: "destination refused by the SSRF guard",
      attempts: 1,
    });

  it("cannot reach the mock without an allowance", async () => {
    canary = await startServer();
    const { client } = harness({ guard: NO_PRIVATE });
    expectRefused(await client.call(target(`${canary.url}/invoke`), REQUEST));
    expect(canary.requests).toHaveLength(0);
  });

  it("refuses every connectable corpus URL; the canary is never hit", async () => {
    canary = await startServer();
    const { client } = harness({ guard: NO_PRIVATE });
    for (const url of connectableCorpus(canary.port)) {
      const result = await client.call(target(url), REQUEST);
      expect(result, url).toMatchObject({ outcome: "failure", retryable: false });
      expect(result.error, url).toMatch(/SSRF guard|must not contain credentials/);
    }
    expect(canary.requests).toHaveLength(0);
  });

  it("refuses a name that resolves to 127.0.0.1, and reaches it when allowed", async () => {
    canary = await startServer();
    const url = `http://canary.steward.test:${canary.port}/invoke`;
    const refusing = new AddressGuard({ kind: "none" }, { dnsServers: [dns.address] });
    const allowing = new AddressGuard(
      { kind: "cidrs", cidrs: ["127.0.0.1/32"] },
      { dnsServers: [dns.address] },
    );

    expect(await refusing.checkUrl(url)).toEqual(expect.any(String));
    expectRefused(await harness({ guard: refusing }).client.call(target(url), REQUEST));
    expect(canary.requests).toHaveLength(0);

    expect(await allowing.checkUrl(url)).toBeNull();
    const result = await harness({ guard: allowing }).client.call(target(url), REQUEST);
    expect(result.outcome).toBe("success");
    expect(canary.requests[0]?.headers.host).toBe(`canary.steward.test:${canary.port}`);
  });

  it("guards the oauth2 token endpoint too", async () => {
    const idp = await startServer((_request, response) => json(response, 200, { access_token: "t" }));
    const { client } = harness({ guard: NO_PRIVATE });
    const result = await client.call(
      target(`${idp.url}/agent`, "oauth2", {
        client_id: "c",
        client_secret: "s",
        token_url: `${idp.url}/token`,
      }),
      REQUEST,
    );
    expectRefused(result);
    expect(idp.requests).toHaveLength(0);
  });
});

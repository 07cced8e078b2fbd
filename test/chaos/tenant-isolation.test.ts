import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { LightMyRequestResponse } from "fastify";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { until } from "../helpers/eventually.js";
import { SHOUT } from "../helpers/jobs.js";
import { definition } from "../helpers/managed-agents.js";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import { TEST_REDIS_URL } from "../helpers/services.js";
import {
  createKey,
  createOrgWithKey,
  invokeEnv,
  registerAgent,
  serveOnLoopback,
  startTestSteward,
  type TestSteward,
} from "../helpers/steward.js";
import {
  resignedWithGuessedSecret,
  startTokenIssuer,
  type TokenIssuer,
  tampered,
  unsigned,
} from "./forged-credentials.js";
import { jsonRpcErrorCode } from "./json-rpc-error.js";
import { type Operation, operationsWithPathParameters, pathWith } from "./openapi-operations.js";
import { changesBetween, observeState, type StateObserver } from "./state-snapshot.js";
import { tally } from "./tally.js";

/**
 * Tenant isolation. Org A's admin key on every id of org B the API takes answers 404 and
 * changes nothing; every kind of bad credential answers 401 and creates nothing. "Nothing"
 * is checked after each request: a checksum of every table of the test's schema and of every
 * Redis key under its prefix (test/chaos/state-snapshot.ts).
 */

type Method = Operation["method"];

interface Org {
  organizationId: string;
  key: string;
}

/** What org B holds: one resource of every kind an API path names, and data only B knows. */
interface OrgB extends Org {
  ids: {
    apiKey: string;
    externalAgent: string;
    invocation: string;
    approval: string;
    delivery: string;
    webhook: string;
    policy: string;
    approvalRule: string;
    alertRule: string;
    managedAgent: string;
    job: string;
  };
  /** The external user B's calls were made for: a lineage subject. */
  subject: string;
  /** A valid token of B's managed agent. */
  agentToken: string;
  /** Values only org B's own answers may carry. */
  secrets: string[];
}

let t: TestSteward;
let baseUrl: string;
let issuer: TokenIssuer;
let agent: MockAgent;
let redis: Redis;
let state: StateObserver;
let orgA: Org;
let orgB: OrgB;

beforeAll(async () => {
  issuer = await startTokenIssuer("https://id.chaos.test/", "steward-chaos");
  agent = await startMockAgent();
  const env = invokeEnv({
    STEWARD_JWT_JWKS_URL: issuer.jwksUrl,
    STEWARD_JWT_ISSUER: issuer.issuer,
    STEWARD_JWT_AUDIENCE: issuer.audience,
  });
  t = await startTestSteward("postgres", env);
  baseUrl = await serveOnLoopback(t);
  redis = new Redis(TEST_REDIS_URL);
  state = await observeState(t.steward.database.schema, redis, env.STEWARD_REDIS_PREFIX ?? "");
  orgA = await createOrgWithKey(t, "admin", `chaos-a-${randomBytes(3).toString("hex")}`);
  orgB = await seedOrgB(await createOrgWithKey(t, "admin", `chaos-b-${randomBytes(3).toString("hex")}`));
});

afterAll(async () => {
  await state?.close();
  redis?.disconnect();
  await t?.close();
  await agent?.close();
  await issuer?.close();
});

/** Sends a request that must succeed (org B setting itself up) and answers its JSON. */
async function must(
  key: string,
  method: Method,
  url: string,
  payload?: object,
  headers: Record<string, string> = {},
) {
  const response = await t.request({ method, url, key, headers, ...(payload ? { payload } : {}) });
  if (response.statusCode >= 300)
    throw new Error(`${method} ${url}: ${response.statusCode} ${response.body}`);
  return response.body ? response.json() : undefined;
}

/** Waits for Steward's background work; set-up cannot go on without it. */
async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  await until(check);
  if (!(await check())) throw new Error(`${what} did not happen`);
}

/**
 * Creates in org B one resource of every kind, with a finished call and its deliveries, a
 * call waiting for approval, a finished job and budget and rate-limit counters in use.
 */
async function seedOrgB(org: Org): Promise<OrgB> {
  const tag = randomBytes(4).toString("hex");
  const names = { plain: `b-plain-${tag}`, gated: `b-gated-${tag}` };
  const secrets = {
    agentCredential: `b-agent-credential-${tag}`,
    input: `b-private-input-${tag}`,
    jobInput: `b-private-job-${tag}`,
  };
  const origin = new URL(agent.url).origin;
  const key = org.key;

  await createKey(t, "viewer", org.organizationId);
  const keys = await must(key, "GET", "/api/v1/api-keys");
  const apiKey: string = keys.items.find((item: { role: string }) => item.role === "viewer").id;
  const externalAgent = await registerAgent(
    t,
    agent.url,
    {
      name: names.plain,
      auth_type: "bearer_token",
      auth_config: { token: secrets.agentCredential },
      platform_config: { webhook_url: `${origin}/platform` },
      budget_config: { cost_per_execution: 1 },
      rate_limit_config: { requests_per_minute: 1000 },
      // Published: its A2A routes turn org A away for its organization, not for being unpublished.
      a2a: { published: true },
    },
    key,
  );
  const gatedAgent = await registerAgent(
    t,
    agent.url,
    {
      name: names.gated,
      budget_config: { cost_per_execution: 1 },
      approval_config: { triggers: { cost_threshold: 0.5 }, workflow: { approver_roles: ["admin"] } },
    },
    key,
  );
  const webhook = await must(key, "POST", "/api/v1/webhooks", {
    url: `${origin}/events`,
    events: ["approval.requested"],
  });
  const subject = `b-user-${tag}@example.com`;
  const invoke = (id: string) =>
    must(
      key,
      "POST",
      `/api/v1/external-agents/${id}/invoke`,
      { input: secrets.input },
      { "x-external-user-id": subject },
    );
  const call = await invoke(externalAgent);
  const held = await invoke(gatedAgent);
  const policy = await must(key, "POST", "/api/v1/policies", {
    name: `b-policy-${tag}`,
    effect: "deny",
    conditions: [{ type: "roles", values: ["viewer"] }],
  });
  const approvalRule = await must(key, "POST", "/api/v1/approval-rules", {
    name: `b-rule-${tag}`,
    external_agent_ids: [externalAgent],
    triggers: { cost_threshold: 100 },
    workflow: { approver_roles: ["admin"] },
  });
  const managed = await must(key, "POST", "/api/v1/agents", definition({ name: `b-managed-${tag}` }));
  const managedAgent: string = managed.agent.id;
  await must(key, "PUT", `/api/v1/agents/${managedAgent}/config`, { level: 1 });
  const alertRule = await must(key, "POST", "/api/v1/agents/alert-rules", {
    name: `b-alert-${tag}`,
    kind: "metric_threshold",
    metric: "errors",
    threshold: 5,
    agent_id: managedAgent,
  });
  const job = await must(key, "POST", "/api/v1/jobs", {
    agent_definition: SHOUT,
    input_payload: { text: secrets.jobInput },
  });

  await waitFor(
    "org B's job",
    async () => (await must(key, "GET", `/api/v1/jobs/${job.id}`)).status === "completed",
  );
  // The call's platform message and the approval.requested event: once both are out, nothing is left to run.
  await waitFor("org B's deliveries", async () => {
    const { items } = await must(key, "GET", "/api/v1/deliveries");
    return items.length === 2 && items.every((item: { status: string }) => item.status === "delivered");
  });
  const deliveries = await must(key, "GET", `/api/v1/deliveries?external_agent_id=${externalAgent}`);

  return {
    ...org,
    ids: {
      apiKey,
      externalAgent,
      invocation: call.invocation_id,
      approval: held.approval_id,
      delivery: deliveries.items[0].id,
      webhook: webhook.id,
      policy: policy.id,
      approvalRule: approvalRule.id,
      alertRule: alertRule.id,
      managedAgent,
      job: job.id,
    },
    subject,
    agentToken: managed.credentials.token,
    secrets: [
      org.organizationId,
      names.plain,
      names.gated,
      webhook.secret,
      secrets.agentCredential,
      secrets.input,
      secrets.jobInput.toUpperCase(),
    ],
  };
}

/**
 * Org B's resources that org B can no longer read intact — gone, deleted or revoked: what
 * org B would have lost to a request that got through.
 */
async function orgBResourcesLost(): Promise<number> {
  const { ids } = orgB;
  const read = async (path: string) => {
    const response = await t.request({ method: "GET", url: `/api/v1/${path}`, key: orgB.key });
    return response.statusCode === 200 ? response.json() : undefined;
  };
  const listed = async (
    path: string,
    id: string,
    usable: (item: Record<string, unknown>) => boolean = () => true,
  ) =>
    ((await read(path))?.items ?? []).some((item: Record<string, unknown>) => item.id === id && usable(item));
  const kept = await Promise.all([
    listed("api-keys?limit=100", ids.apiKey, (key) => key.revoked_at === null),
    read(`external-agents/${ids.externalAgent}`).then((found) => found?.status === "active"),
    read(`invocations/${ids.invocation}`).then(Boolean),
    read(`approvals/${ids.approval}`).then((found) => found?.status === "pending"),
    read(`deliveries/${ids.delivery}`).then(Boolean),
    read(`webhooks/${ids.webhook}`).then((found) => found?.active === true),
    read(`policies/${ids.policy}`).then(Boolean),
    read(`approval-rules/${ids.approvalRule}`).then(Boolean),
    listed("agents/alert-rules", ids.alertRule),
    read(`agents/${ids.managedAgent}`).then((found) => found !== undefined && found.state !== "deleted"),
    read(`jobs/${ids.job}`).then(Boolean),
  ]);
  return kept.filter((intact) => !intact).length;
}

/** How Steward answered, whatever the transport. */
interface Answer {
  status: number;
  /** The answer's body; for an opened WebSocket, the messages it sent. */
  body: string;
  wwwAuthenticate: string | undefined;
  /** For an opened WebSocket: how it ended. */
  closeCode?: number;
}

function answerOf(response: LightMyRequestResponse): Answer {
  const header = response.headers["www-authenticate"];
  return { status: response.statusCode, body: response.body, wwwAuthenticate: header?.toString() };
}

function readBody(response: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    response.on("data", (chunk: Buffer) => chunks.push(chunk));
    response.on("end", () => resolve(Buffer.concat(chunks).toString()));
  });
}

/**
 * Opens a WebSocket and answers how it went: a refused handshake's status and body, or 101
 * with what the server sent until it closed, or until its first message (2 s at most).
 */
function webSocketAnswer(path: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${baseUrl.replace("http", "ws")}${path}`, { headers });
    const messages: string[] = [];
    let closeCode: number | undefined;
    socket.on("message", (data) => messages.push(String(data)));
    socket.on("close", (code) => {
      closeCode = code;
    });
    // Ending a socket whose handshake was refused reports an error too: by then the answer is in.
    socket.on("error", reject);
    socket.once("unexpected-response", async (_request, response) => {
      const body = await readBody(response);
      socket.terminate();
      resolve({
        status: response.statusCode ?? 0,
        body,
        wwwAuthenticate: response.headers["www-authenticate"],
      });
    });
    socket.once("open", async () => {
      await until(() => messages.length > 0 || closeCode !== undefined, 2_000);
      socket.terminate();
      resolve({ status: 101, body: messages.join("\n"), wwwAuthenticate: undefined, closeCode });
    });
  });
}

function hasErrorEnvelope(answer: Answer, code: string): boolean {
  try {
    const { error } = JSON.parse(answer.body);
    return error?.code === code && typeof error.message === "string" && typeof error.request_id === "string";
  } catch {
    return false;
  }
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

const leaksOrgB = (text: string) => orgB.secrets.some((secret) => text.includes(secret));

const describeAnswer = (answer: Answer, changes: string[]) =>
  [
    answer.status,
    answer.closeCode === undefined ? "" : `then closed ${answer.closeCode}`,
    changes.length > 0 ? `changed ${changes.join(", ")}` : "",
  ]
    .filter(Boolean)
    .join(" ");

/** What sending a class of cases did: its figures, and each case not handled with what happened instead. */
interface Outcome {
  figures: { tried: number; handled: number; leaked: number };
  failures: string[];
}

/**
 * Sends each case in turn and snapshots Steward's state after each. A case is handled when
 * its answer is the expected one, nothing changed and the agent was not called; it leaked
 * when its answer carries org B's data, or its answer or the log lines written meanwhile
 * carry one of `secretsOf(case)`.
 */
async function tryEach<T>(
  cases: T[],
  options: {
    name(item: T): string;
    send(item: T): Promise<Answer>;
    expected(answer: Answer): boolean;
    secretsOf?(item: T): string[];
  },
): Promise<Outcome> {
  const outcome: Outcome = { figures: { tried: 0, handled: 0, leaked: 0 }, failures: [] };
  let previous = await state.snapshot();
  for (const item of cases) {
    const callsBefore = agent.requests.length;
    const logsBefore = t.logs.length;
    const answer = await options.send(item);
    const current = await state.snapshot();
    const changes = changesBetween(previous, current);
    previous = current;
    outcome.figures.tried += 1;
    const told = [answer.body, ...t.logs.slice(logsBefore)].join("\n");
    const secrets = options.secretsOf?.(item) ?? [];
    if (leaksOrgB(answer.body) || secrets.some((secret) => told.includes(secret)))
      outcome.figures.leaked += 1;
    if (options.expected(answer) && changes.length === 0 && agent.requests.length === callsBefore)
      outcome.figures.handled += 1;
    else outcome.failures.push(`${options.name(item)}: ${describeAnswer(answer, changes)}`);
  }
  return outcome;
}

/** Steward's own envelope, or on the A2A endpoint the JSON-RPC error for an unknown agent (docs/a2a.md). */
const isNotFound = (answer: Answer) =>
  answer.status === 404 && (hasErrorEnvelope(answer, "NOT_FOUND") || isJsonRpcError(answer, A2A_NOT_FOUND));

const A2A_NOT_FOUND = -32044;

function isJsonRpcError(answer: Answer, code: number): boolean {
  try {
    return jsonRpcErrorCode(JSON.parse(answer.body)) === code;
  } catch {
    return false;
  }
}

/** Steward's OpenAPI document: the routes it says it has. */
async function documentedOperations(): Promise<Operation[]> {
  return operationsWithPathParameters(
    (await t.request({ method: "GET", url: "/openapi.json", key: null })).json(),
  );
}

/** Org B's id for each kind of path parameter; a route with a kind not listed fails the test. */
function orgBIdFor(slot: string): string | undefined {
  const ids = orgB.ids;
  const bySlot: Record<string, string> = {
    "api-keys/{id}": ids.apiKey,
    "external-agents/{id}": ids.externalAgent,
    "invocations/{id}": ids.invocation,
    "lineage/{invocation_id}": ids.invocation,
    "approvals/{id}": ids.approval,
    "deliveries/{id}": ids.delivery,
    "webhooks/{id}": ids.webhook,
    "policies/{id}": ids.policy,
    "approval-rules/{id}": ids.approvalRule,
    "alert-rules/{ruleId}": ids.alertRule,
    "agents/{id}": ids.managedAgent,
    "jobs/{id}": ids.job,
    "a2a/{agent_id}": ids.externalAgent,
  };
  return bySlot[slot];
}

/**
 * External-user subjects are not ids an organization owns (one person may use both
 * organizations' agents): org A asking about org B's user must get what it gets for a user
 * nobody has.
 */
const SUBJECT_SLOT = "users/{subject}";

/** A body each operation accepts, so that a refusal cannot come from the body. */
const VALID_BODIES: Record<string, object> = {
  "PATCH /api/v1/external-agents/{id}": { description: "changed by org A" },
  "POST /api/v1/external-agents/{id}/invoke": { input: "org A calling" },
  "PATCH /api/v1/external-agents/{id}/budget/config": { max_daily_cost: 1 },
  "PATCH /api/v1/policies/{id}": { enabled: false },
  "PATCH /api/v1/webhooks/{id}": { active: false },
  "POST /api/v1/webhooks/{id}/rotate-secret": { overlap_seconds: 0 },
  "POST /api/v1/approvals/{id}/approve": { reason: "org A approves" },
  "POST /api/v1/approvals/{id}/reject": { reason: "org A rejects" },
  "PATCH /api/v1/approval-rules/{id}": { enabled: false },
  "PUT /api/v1/agents/{id}/status": { status: "stopped", reason: "org A" },
  "PUT /api/v1/agents/{id}/config": { level: 9 },
  "PUT /api/v1/agents/{id}/config/overrides": { level: 9 },
  "POST /api/v1/agents/{id}/heartbeat": { status: "ok", uptime: 1 },
  "POST /api/v1/agents/{id}/metrics": { errors: 1, events_processed: 10 },
  "POST /api/v1/agents/{id}/logs": { entries: [{ level: "info", message: "org A writes" }] },
};

/** Query strings: the required ones, and a short wait for the long poll (so a bug there cannot hang the suite). */
const QUERIES: Record<string, string> = {
  "POST /api/v1/external-agents/{id}/deliveries/replay": "status=dead",
  "GET /api/v1/agents/{id}/control": "wait_s=1",
};

/** The request org A sends for an operation, `fill` giving each path parameter's value. */
function requestFor(operation: Operation, fill: (slot: string) => string) {
  const query = QUERIES[operation.name];
  const missing = operation.requiredQuery.filter((param) => !query?.includes(`${param}=`));
  if (missing.length > 0)
    throw new Error(`${operation.name}: no value for required query ${missing.join(", ")}`);
  const payload = VALID_BODIES[operation.name];
  if (operation.hasBody && !payload) throw new Error(`${operation.name}: no valid body to send`);
  const path = pathWith(operation, fill);
  return { method: operation.method, url: query ? `${path}?${query}` : path, key: orgA.key, payload };
}

/**
 * The WebSocket routes that take an id. @fastify/websocket hides WebSocket routes from the
 * OpenAPI document, so they are listed here, and the test checks that Steward has each.
 */
const WEBSOCKET_ROUTES: Array<{ route: string; id: () => string }> = [
  { route: "/api/v1/jobs/:id/stream/ws", id: () => orgB.ids.job },
  { route: "/api/v1/agents/:id/control/ws", id: () => orgB.ids.managedAgent },
];

describe("org A's key on org B's ids", () => {
  it("answers 404 on every documented operation with an id and changes nothing", async (context) => {
    const operations = (await documentedOperations()).filter(
      (operation) => !operation.slots.includes(SUBJECT_SLOT),
    );
    const unmapped = operations.flatMap((operation) =>
      operation.slots
        .filter((slot) => orgBIdFor(slot) === undefined)
        .map((slot) => `${operation.name} (${slot})`),
    );
    expect(unmapped, "path parameters with no org B id to try").toEqual([]);

    const outcome = await tryEach(operations, {
      name: (operation) => operation.name,
      send: async (operation) =>
        answerOf(await t.request(requestFor(operation, (slot) => orgBIdFor(slot) ?? ""))),
      expected: isNotFound,
    });
    expect.soft(outcome.failures, "operations that did not answer 404, or changed something").toEqual([]);
    const lost = await orgBResourcesLost();
    tally(context, { fault: "org A's key on org B's ids", ...outcome.figures, lost });
  });

  it("refuses with 404 the handshake of every WebSocket route with an id, and changes nothing", async (context) => {
    const unknown = WEBSOCKET_ROUTES.filter(
      ({ route }) => !t.steward.server.hasRoute({ method: "GET", url: route }),
    );
    expect(unknown, "WebSocket routes Steward does not have").toEqual([]);

    const outcome = await tryEach(WEBSOCKET_ROUTES, {
      name: ({ route }) => route,
      send: ({ route, id }) => webSocketAnswer(route.replace(":id", id()), bearer(orgA.key)),
      expected: isNotFound,
    });
    expect.soft(outcome.failures, "WebSocket routes that did not refuse the handshake with 404").toEqual([]);
    const lost = await orgBResourcesLost();
    tally(context, { fault: "org A's key on org B's ids (WebSocket)", ...outcome.figures, lost });
  });

  it("answers about org B's external user as about a user nobody has, and changes nothing of B's", async (context) => {
    const operations = (await documentedOperations()).filter((operation) =>
      operation.slots.includes(SUBJECT_SLOT),
    );
    // An erasure request is itself recorded, in the caller's own audit trail: that row is org A's.
    const withoutOwnErasures = {
      audit_events: `NOT (t.organization_id = ${state.literal(orgA.organizationId)} AND t.action = 'lineage.subject_redacted')`,
    };
    const failures: string[] = [];
    let handled = 0;
    let leaked = 0;
    for (const operation of operations) {
      const before = await state.snapshot(withoutOwnErasures);
      const nobody = `nobody-${randomBytes(4).toString("hex")}@example.com`;
      const asked = answerOf(await t.request(requestFor(operation, () => orgB.subject)));
      const control = answerOf(await t.request(requestFor(operation, () => nobody)));
      const changes = changesBetween(before, await state.snapshot(withoutOwnErasures));
      if (leaksOrgB(asked.body)) leaked += 1;
      const sameAnswer =
        asked.status === control.status &&
        asked.body.replaceAll(orgB.subject, "<subject>") === control.body.replaceAll(nobody, "<subject>");
      if (asked.status < 500 && asked.status !== 403 && sameAnswer && changes.length === 0) handled += 1;
      else
        failures.push(`${operation.name}: ${describeAnswer(asked, changes)}, for nobody ${control.status}`);
    }
    expect.soft(failures, "subject operations that told org A something, or changed something").toEqual([]);
    const lost = await orgBResourcesLost();
    tally(context, {
      fault: "org A's key on org B's user subjects",
      tried: operations.length,
      handled,
      lost,
      leaked,
    });
  });
});

/** A credential as a client presents it: the request headers that carry it. */
interface BadCredential {
  name: string;
  headers: Record<string, string>;
}

/** Creates an admin API key in org B; answers it with its id. */
function orgBKey(extra: Record<string, unknown> = {}): Promise<{ id: string; key: string }> {
  return must(orgB.key, "POST", "/api/v1/api-keys", { name: "chaos key", role: "admin", ...extra });
}

/** Registers a managed agent in org B; answers its id and token. */
async function orgBManagedAgent(): Promise<{ id: string; token: string }> {
  const { agent, credentials } = await must(orgB.key, "POST", "/api/v1/agents", definition());
  return { id: agent.id, token: credentials.token };
}

/**
 * Every kind of credential that must not get in: dead and malformed API keys, JWTs a
 * stranger made or altered, managed-agent tokens revoked or forged. Each is made from a real
 * credential of org B, so only the flaw its name says keeps it out.
 */
async function badCredentials(): Promise<BadCredential[]> {
  // Long enough to be created under load; the corpus takes about as long to build.
  const expiresAt = Date.now() + 2_500;
  const expired = await orgBKey({ expires_at: new Date(expiresAt).toISOString() });
  const revoked = await orgBKey();
  await must(orgB.key, "DELETE", `/api/v1/api-keys/${revoked.id}`);
  const revokedAgent = await orgBManagedAgent();
  await must(orgB.key, "DELETE", `/api/v1/agents/${revokedAgent.id}/token`);
  const deletedAgent = await orgBManagedAgent();
  await must(orgB.key, "DELETE", `/api/v1/agents/${deletedAgent.id}`);
  const key = orgB.key;
  const claims = { org_id: orgB.organizationId, roles: ["admin"] };
  const jwt = await issuer.sign(claims);

  const corpus: BadCredential[] = [
    { name: "no credential", headers: {} },
    { name: "API key: revoked", headers: bearer(revoked.key) },
    { name: "API key: empty bearer", headers: { authorization: "Bearer " } },
    { name: "API key: empty X-API-Key", headers: { "x-api-key": "" } },
    { name: "API key: wrong prefix", headers: bearer(key.replace(/^sk_live_/, "sk_test_")) },
    { name: "API key: prefix only", headers: bearer("sk_live_") },
    { name: "API key: truncated", headers: bearer(key.slice(0, -1)) },
    { name: "API key: overlong", headers: bearer(`${key}${"A".repeat(4096)}`) },
    { name: "API key: non-ASCII", headers: bearer(`${key.slice(0, -1)}é`) },
    { name: "API key: case changed", headers: bearer(key.toUpperCase()) },
    {
      name: "API key: Basic scheme",
      headers: { authorization: `Basic ${Buffer.from(`${key}:`).toString("base64")}` },
    },
    { name: "API key: two tokens", headers: { authorization: `Bearer ${key} ${key}` } },
    { name: "API key: SQL in X-API-Key", headers: { "x-api-key": "sk_live_' OR '1'='1" } },
    { name: "JWT: bad signature", headers: bearer(await issuer.sign(claims, { strangerKey: true })) },
    {
      name: "JWT: unknown key id",
      headers: bearer(await issuer.sign(claims, { strangerKey: true, keyId: "k2" })),
    },
    { name: "JWT: wrong audience", headers: bearer(await issuer.sign(claims, { audience: "someone-else" })) },
    {
      name: "JWT: wrong issuer",
      headers: bearer(await issuer.sign(claims, { issuer: "https://evil.test/" })),
    },
    { name: "JWT: expired", headers: bearer(await issuer.sign(claims, { expiresIn: "-1m" })) },
    { name: "JWT: not yet valid", headers: bearer(await issuer.sign(claims, { notBefore: "10m" })) },
    { name: "JWT: alg none", headers: bearer(unsigned(jwt)) },
    {
      name: "JWT: HS256 keyed with the public key",
      headers: bearer(await issuer.signWithPublicKeyAsSecret(claims)),
    },
    {
      name: "JWT: claims altered after signing",
      headers: bearer(tampered(jwt, { org_id: orgA.organizationId, roles: ["owner"] })),
    },
    {
      name: "JWT: unknown organization",
      headers: bearer(await issuer.sign({ ...claims, org_id: "org_nobody" })),
    },
    { name: "JWT: no subject", headers: bearer(await issuer.sign(claims, { noSubject: true })) },
    { name: "JWT: garbage segments", headers: bearer("not.a.jwt") },
    { name: "JWT: empty segments", headers: bearer("eyJhbGciOiJSUzI1NiJ9..") },
    { name: "agent token: revoked", headers: bearer(revokedAgent.token) },
    { name: "agent token: agent deleted", headers: bearer(deletedAgent.token) },
    { name: "agent token: alg none", headers: bearer(unsigned(orgB.agentToken)) },
    {
      name: "agent token: guessed secret",
      headers: bearer(await resignedWithGuessedSecret(orgB.agentToken)),
    },
    {
      name: "agent token: claims altered after signing",
      headers: bearer(tampered(orgB.agentToken, { org: orgA.organizationId })),
    },
  ];
  await until(() => Date.now() > expiresAt);
  return [{ name: "API key: expired", headers: bearer(expired.key) }, ...corpus];
}

/** Where each credential is tried: a list, a create, an invoke, and the two live streams the dashboard opens. */
function credentialProbes(): Array<{
  route: string;
  send(headers: Record<string, string>): Promise<Answer>;
}> {
  const inject = async (method: Method, url: string, headers: Record<string, string>, payload?: object) =>
    answerOf(await t.request({ method, url, key: null, headers, ...(payload ? { payload } : {}) }));
  const newAgent = () => ({
    name: `intruder-${randomBytes(3).toString("hex")}`,
    platform: "custom_http",
    webhook_url: agent.url,
  });
  return [
    { route: "GET external agents", send: (headers) => inject("GET", "/api/v1/external-agents", headers) },
    {
      route: "POST external agent",
      send: (headers) => inject("POST", "/api/v1/external-agents", headers, newAgent()),
    },
    {
      route: "POST invoke",
      send: (headers) =>
        inject("POST", `/api/v1/external-agents/${orgB.ids.externalAgent}/invoke`, headers, {
          input: "intruder",
        }),
    },
    {
      route: "job events (SSE)",
      send: (headers) => inject("GET", `/api/v1/jobs/${orgB.ids.job}/stream`, headers),
    },
    { route: "live board (WebSocket)", send: (headers) => webSocketAnswer("/api/v1/agents/ws", headers) },
  ];
}

const isUnauthorized = (answer: Answer) =>
  answer.status === 401 &&
  answer.wwwAuthenticate?.startsWith("Bearer") === true &&
  hasErrorEnvelope(answer, "UNAUTHORIZED");

/** The secret part of a presented credential, when long enough to recognise if it is echoed or logged. */
function presentedSecrets(credential: BadCredential): string[] {
  return Object.values(credential.headers)
    .map((value) => value.replace(/^(Bearer|Basic)\s+/, ""))
    .filter((value) => value.length >= 16);
}

describe("bad credentials", () => {
  it("answers 401 with the error envelope to every bad API key, JWT and agent token, and creates nothing", async (context) => {
    const probes = credentialProbes();
    // Controls: good credentials get through on the same routes, so each refusal below is the flaw's doing.
    const goodJwt = await issuer.sign({ org_id: orgB.organizationId, roles: ["admin"] });
    const controls = await Promise.all([
      ...probes
        .filter((probe) => !probe.route.startsWith("POST"))
        .map((probe) => probe.send(bearer(orgB.key))),
      probes[0]?.send(bearer(goodJwt)),
      t
        .request({ method: "GET", url: `/api/v1/agents/${orgB.ids.managedAgent}`, key: orgB.agentToken })
        .then(answerOf),
    ]);
    expect(controls.map((answer) => answer?.status)).toEqual([200, 200, 101, 200, 200]);

    const corpus = await badCredentials();
    const cases = corpus.flatMap((credential) => probes.map((probe) => ({ credential, probe })));
    const outcome = await tryEach(cases, {
      name: ({ credential, probe }) => `${credential.name} on ${probe.route}`,
      send: ({ credential, probe }) => probe.send(credential.headers),
      expected: isUnauthorized,
      secretsOf: ({ credential }) => presentedSecrets(credential),
    });
    expect
      .soft(outcome.failures, "bad credentials not refused with 401, or that changed something")
      .toEqual([]);
    const lost = await orgBResourcesLost();
    tally(context, { fault: "bad credentials", ...outcome.figures, lost });
  });
});

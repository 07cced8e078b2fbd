import { createHmac, randomBytes } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import type { NatsConnection } from "@nats-io/transport-node";
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, type TestContext } from "vitest";
import { secretContext } from "../../src/agents/credentials.js";
import { parseEncryptionKey, SecretBox } from "../../src/crypto/secret-box.js";
import { until } from "../helpers/eventually.js";
import { oneNodeGraph } from "../helpers/jobs.js";
import { type MockAgent, type ReceivedRequest, startMockAgent } from "../helpers/mock-agent.js";
import { type RestartableNatsServer, startRestartableNatsServer } from "../helpers/nats-server.js";
import { TEST_DATABASE_URL, TEST_REDIS_URL } from "../helpers/services.js";
import { type StewardProcess, startStewardServer, stewardEnvironment } from "../helpers/steward-process.js";
import {
  botTokenCanary,
  type Canary,
  dumpSchemaData,
  newCanary,
  recordNatsTraffic,
  recordRedisMessages,
  redisKeysAndValues,
  sightings,
} from "./secret-search.js";
import { tally } from "./tally.js";

/**
 * Canary secrets (`sk-CANARY-…`) in every credential field an agent has are used where
 * they belong — the agent, its token endpoint, its platform — and nowhere else: not in
 * an API answer, a log line, an audit event, a lineage record, a NATS message, a Redis
 * key or a pg_dump of the database (there only as ciphertext). Then tampering: a
 * flipped byte in a stored credential sends nothing, and an edited lineage row is named.
 */

const BASIC_USER = "steward-basic";
const basicCredentials = (password: string) => Buffer.from(`${BASIC_USER}:${password}`).toString("base64");

/** Every canary, by what it is. The ones marked rejected are only ever sent in requests Steward must refuse. */
const CANARY = {
  replacedBearer: newCanary("bearer token, replaced by PATCH"),
  bearer: newCanary("bearer token"),
  slackUrl: newCanary("Slack webhook URL"),
  apiKey: newCanary("API key, kept by PATCH with its mask"),
  telegramToken: botTokenCanary("Telegram bot token"),
  basicPassword: newCanary("basic auth password", basicCredentials),
  discordUrl: newCanary("Discord webhook URL"),
  clientSecret: newCanary("OAuth2 client secret"),
  accessToken: newCanary("OAuth2 access token"),
  notionToken: newCanary("Notion token, echoed by Notion"),
  hmacSecret: newCanary("hmac signing secret"),
  customHttpUrl: newCanary("custom_http delivery URL"),
  customHttpHeader: newCanary("custom_http delivery header"),
  customHeader: newCanary("custom auth header, after approval"),
  teamsUrl: newCanary("Teams webhook URL"),
  echoedToken: newCanary("bearer token echoed by a failing agent"),
  mattermostUrl: newCanary("Mattermost webhook URL"),
  rejectedUnknownField: newCanary("secret in a PATCH with an unknown field"),
  rejectedTooLong: newCanary("secret in a PATCH with a too long token"),
  rejectedMalformedJson: newCanary("secret in malformed JSON"),
  rejectedRegistration: newCanary("secret in an invalid registration"),
  rejectedDuplicateName: newCanary("secret in a registration with a taken name"),
};

/** Where a stored credential sits, sealed: `<section>.<path>` of an agent, or a webhook subscription's secret. */
interface SealedPlace {
  canary: Canary;
  table: "external_agents" | "webhook_subscriptions";
  id: string;
  column: string;
  /** JSON keys from the column value down to the sealed object; none when the column is that object. */
  keys: string[];
  context: string;
}

/** Standard Webhooks: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">` among the signatures. */
function signedWith(key: Buffer, request: ReceivedRequest, header = "webhook-signature"): boolean {
  const id = String(request.headers["webhook-id"]);
  const timestamp = String(request.headers["webhook-timestamp"]);
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.${request.rawBody}`).digest("base64");
  return String(request.headers[header] ?? "")
    .split(" ")
    .includes(`v1,${expected}`);
}

/** `sealed` (`v1.<key id>.<iv>.<tag>.<ciphertext>`) with the middle byte of one part inverted. */
function flipByte(sealed: string, part: "iv" | "tag" | "ciphertext"): string {
  const parts = sealed.split(".");
  const index = { iv: 2, tag: 3, ciphertext: 4 }[part];
  const bytes = Buffer.from(parts[index] ?? "", "base64url");
  const middle = Math.floor(bytes.length / 2);
  bytes.writeUInt8(bytes.readUInt8(middle) ^ 0xff, middle);
  parts[index] = bytes.toString("base64url");
  return parts.join(".");
}

const STACK_TRACE = /\n\s+at \S|\.[jt]s:\d+/;

interface Answer {
  status: number;
  text: string;
  json: unknown;
  headers: Headers;
}

describe("secret leaks", () => {
  const run = randomBytes(4).toString("hex");
  const subjectPrefix = `t${run}.agent`;
  const jobPrefix = `job_leaks_${run}_`;
  const { adminKey, schema, env } = stewardEnvironment({
    STEWARD_JOBS_STREAM: `LEAKS_${run.toUpperCase()}`,
    STEWARD_JOBS_SUBJECT_PREFIX: subjectPrefix,
    STEWARD_JOBS_CONSUMER: `leaks-${run}`,
    STEWARD_DELIVERY_RETRY_DELAYS: "100ms,100ms",
    LOG_LEVEL: "debug",
  });
  const redisPrefix = env.STEWARD_REDIS_PREFIX as string;
  const box = new SecretBox(parseEncryptionKey(env.STEWARD_ENCRYPTION_KEY as string));

  let nats: RestartableNatsServer;
  let natsTraffic: { texts: string[]; connection: NatsConnection };
  let jobMessages: { texts: string[]; connection: Redis };
  let redis: Redis;
  let database: pg.Client;
  let steward: StewardProcess;
  let agents: MockAgent;
  let platforms: MockAgent;
  let base: string;

  const canaries: Canary[] = Object.values(CANARY);
  const sealedPlaces: SealedPlace[] = [];
  /** Every API answer, headers and body; `revealsWebhookSecret` marks the one answer that may show it. */
  const answers: Array<{ text: string; revealsWebhookSecret: boolean }> = [];
  const invocationIds = new Set<string>();
  const jobIds: string[] = [];
  const approvalIds: string[] = [];
  /** Changes Steward accepted, each of which must leave an audit event. */
  const changes: Array<{ action: string; resourceId: string }> = [];
  const agentIds: Record<string, string> = {};
  let webhookSecret: Canary;
  let webhookId: string;
  let unansweredCrawls = 0;

  async function api(
    method: string,
    path: string,
    options: { body?: unknown; raw?: string; key?: string; headers?: Record<string, string> } = {},
    revealsWebhookSecret = false,
  ): Promise<Answer> {
    const hasBody = options.body !== undefined || options.raw !== undefined;
    const response = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${options.key ?? adminKey}`,
        ...(hasBody ? { "content-type": "application/json" } : {}),
        ...options.headers,
      },
      body: options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    const headerLines = [...response.headers].map(([name, value]) => `${name}: ${value}`);
    answers.push({ text: `${headerLines.join("\n")}\n\n${text}`, revealsWebhookSecret });
    const invocationId = response.headers.get("x-invocation-id");
    if (invocationId) invocationIds.add(invocationId);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, text, json, headers: response.headers };
  }

  /** How each agent stand-in checks the credential it must receive; the OAuth2 token endpoint too. */
  function answerAsAgent(request: ReceivedRequest) {
    const credentialOk: Record<string, () => boolean> = {
      "/bearer": () =>
        [CANARY.replacedBearer, CANARY.bearer].some(
          (canary) => request.headers.authorization === `Bearer ${canary.value}`,
        ),
      "/api-key": () => request.headers["x-api-key"] === CANARY.apiKey.value,
      "/basic": () =>
        request.headers.authorization === `Basic ${basicCredentials(CANARY.basicPassword.value)}`,
      "/oauth": () => request.headers.authorization === `Bearer ${CANARY.accessToken.value}`,
      "/hmac": () => signedWith(Buffer.from(CANARY.hmacSecret.value), request),
      "/custom": () => request.headers["x-agent-secret"] === CANARY.customHeader.value,
    };
    if (request.path === "/token") {
      const form = new URLSearchParams(request.rawBody);
      return form.get("client_secret") === CANARY.clientSecret.value
        ? { body: { access_token: CANARY.accessToken.value, token_type: "Bearer", expires_in: 3600 } }
        : { status: 401, body: { error: "invalid_client" } };
    }
    // The failing agent quotes the credential it got back, as careless servers do.
    if (request.path === "/echo")
      return { status: 401, body: { error: "invalid token", received: request.headers.authorization } };
    const check = credentialOk[request.path];
    if (check && !check()) return { status: 403, body: { error: "wrong credential" } };
    return { body: { result: `done: ${String(request.body.input)}` } };
  }

  /** The platforms by path; Notion refuses its token and quotes it back. */
  function answerAsPlatform(request: ReceivedRequest) {
    if (request.path.startsWith("/notion/"))
      return {
        status: 401,
        body: { object: "error", message: `API token is invalid: ${request.headers.authorization}` },
      };
    if (request.path.startsWith("/telegram/")) return { body: { ok: true } };
    if (request.path.startsWith("/discord/")) return { status: 204 };
    return { body: "ok" };
  }

  const agentPlans = () => {
    const agentsBase = new URL(agents.url).origin;
    const platformsBase = new URL(platforms.url).origin;
    return {
      bearer: {
        webhook_url: `${agentsBase}/bearer`,
        auth_type: "bearer_token",
        auth_config: { token: CANARY.replacedBearer.value },
        platform: "slack",
        platform_config: { webhook_url: `${platformsBase}/slack/${CANARY.slackUrl.value}`, channel: "#ops" },
        rate_limit_config: { requests_per_minute: 100 },
      },
      apiKey: {
        webhook_url: `${agentsBase}/api-key`,
        auth_type: "api_key",
        auth_config: { key: CANARY.apiKey.value, header_name: "X-Api-Key" },
        platform: "telegram",
        platform_config: { bot_token: CANARY.telegramToken.value, chat_id: 42 },
        rate_limit_config: { requests_per_minute: 100 },
      },
      basic: {
        webhook_url: `${agentsBase}/basic`,
        auth_type: "basic",
        auth_config: { username: BASIC_USER, password: CANARY.basicPassword.value },
        platform: "discord",
        platform_config: { webhook_url: `${platformsBase}/discord/${CANARY.discordUrl.value}` },
      },
      oauth: {
        webhook_url: `${agentsBase}/oauth`,
        auth_type: "oauth2",
        auth_config: {
          client_id: "steward",
          client_secret: CANARY.clientSecret.value,
          token_url: `${agentsBase}/token`,
        },
        platform: "notion",
        platform_config: { token: CANARY.notionToken.value, database_id: "a8aec43384f447ed84390e8e42c2e089" },
      },
      hmac: {
        webhook_url: `${agentsBase}/hmac`,
        auth_type: "hmac",
        auth_config: { secret: CANARY.hmacSecret.value },
        platform: "custom_http",
        platform_config: {
          webhook_url: `${platformsBase}/hook/${CANARY.customHttpUrl.value}`,
          headers: { "X-Delivery-Token": CANARY.customHttpHeader.value },
        },
      },
      custom: {
        webhook_url: `${agentsBase}/custom`,
        auth_type: "custom",
        auth_config: { headers: { "X-Agent-Secret": CANARY.customHeader.value } },
        platform: "teams",
        platform_config: {
          tenant_id: "tenant-1",
          channel_id: "channel-1",
          webhook_url: `${platformsBase}/teams/${CANARY.teamsUrl.value}`,
        },
        approval_config: {
          triggers: { first_invocation: true },
          workflow: { approver_roles: ["admin"], allow_self_approval: true },
        },
      },
      echo: {
        webhook_url: `${agentsBase}/echo`,
        auth_type: "bearer_token",
        auth_config: { token: CANARY.echoedToken.value },
        platform: "mattermost",
        platform_config: { webhook_url: `${platformsBase}/mattermost/${CANARY.mattermostUrl.value}` },
      },
    };
  };

  /** Where each credential ends up sealed once the scenario has run (the bearer token after its PATCH). */
  const agentSecrets: Record<string, Array<[Canary, "auth_config" | "platform_config", string]>> = {
    bearer: [
      [CANARY.bearer, "auth_config", "token"],
      [CANARY.slackUrl, "platform_config", "webhook_url"],
    ],
    apiKey: [
      [CANARY.apiKey, "auth_config", "key"],
      [CANARY.telegramToken, "platform_config", "bot_token"],
    ],
    basic: [
      [CANARY.basicPassword, "auth_config", "password"],
      [CANARY.discordUrl, "platform_config", "webhook_url"],
    ],
    oauth: [
      [CANARY.clientSecret, "auth_config", "client_secret"],
      [CANARY.notionToken, "platform_config", "token"],
    ],
    hmac: [
      [CANARY.hmacSecret, "auth_config", "secret"],
      [CANARY.customHttpUrl, "platform_config", "webhook_url"],
      [CANARY.customHttpHeader, "platform_config", "headers.X-Delivery-Token"],
    ],
    custom: [
      [CANARY.customHeader, "auth_config", "headers.X-Agent-Secret"],
      [CANARY.teamsUrl, "platform_config", "webhook_url"],
    ],
    echo: [
      [CANARY.echoedToken, "auth_config", "token"],
      [CANARY.mattermostUrl, "platform_config", "webhook_url"],
    ],
  };

  async function registerAgents(): Promise<void> {
    for (const [name, plan] of Object.entries(agentPlans())) {
      const answer = await api("POST", "/api/v1/external-agents", {
        body: { name: `leaks-${name}-${run}`, ...plan },
      });
      expect(answer.status, answer.text).toBe(201);
      const id = (answer.json as { id: string }).id;
      agentIds[name] = id;
      changes.push({ action: "external_agent.created", resourceId: id });
      for (const [canary, section, path] of agentSecrets[name] ?? []) {
        // "headers.X-Token" is a header map's entry; the header name may itself hold dots.
        const dot = path.indexOf(".");
        const keys = dot === -1 ? [path] : [path.slice(0, dot), path.slice(dot + 1)];
        sealedPlaces.push({
          canary,
          table: "external_agents",
          id,
          column: section,
          keys,
          context: secretContext(id, section, path),
        });
      }
    }
  }

  async function subscribeWebhook(): Promise<void> {
    const answer = await api(
      "POST",
      "/api/v1/webhooks",
      {
        body: {
          url: `${new URL(platforms.url).origin}/webhooks`,
          events: ["external_agent.invocation.completed", "approval.requested", "approval.approved"],
        },
      },
      true,
    );
    expect(answer.status, answer.text).toBe(201);
    const { id, secret } = answer.json as { id: string; secret: string };
    webhookId = id;
    webhookSecret = {
      label: "webhook subscription secret",
      value: secret,
      spellings: [secret, secret.slice(6)],
    };
    canaries.push(webhookSecret);
    changes.push({ action: "webhook.created", resourceId: id });
    sealedPlaces.push({
      canary: webhookSecret,
      table: "webhook_subscriptions",
      id,
      column: "secret",
      keys: [],
      context: secretContext(id, "webhook_subscription", "secret"),
    });
  }

  /** Requests that carry a secret and must be refused; each answer must not quote it. */
  async function sendRefusedInputs(): Promise<void> {
    const bearer = `/api/v1/external-agents/${agentIds.bearer}`;
    const refused = [
      await api("PATCH", bearer, {
        body: {
          auth_config: { token: CANARY.rejectedUnknownField.value, scope: CANARY.rejectedUnknownField.value },
        },
      }),
      await api("PATCH", bearer, {
        body: { auth_config: { token: `${CANARY.rejectedTooLong.value}${"x".repeat(8200)}` } },
      }),
      await api("PATCH", bearer, {
        raw: `{"auth_config": {"token": "${CANARY.rejectedMalformedJson.value}",}}`,
      }),
      await api("POST", "/api/v1/external-agents", {
        body: {
          name: `leaks-invalid-${run}`,
          platform: "custom_http",
          webhook_url: "ftp://agent.example/invoke",
          auth_type: "basic",
          auth_config: { password: CANARY.rejectedRegistration.value },
        },
      }),
      await api("POST", "/api/v1/external-agents", {
        body: {
          name: `leaks-bearer-${run}`,
          platform: "custom_http",
          webhook_url: agents.url,
          auth_type: "bearer_token",
          auth_config: { token: CANARY.rejectedDuplicateName.value },
        },
      }),
    ];
    expect(refused.map((answer) => answer.status)).toEqual([400, 400, 400, 400, 409]);
  }

  const invoke = (agent: string, input: string, user = "u-1") =>
    api("POST", `/api/v1/external-agents/${agentIds[agent]}/invoke`, {
      body: { input },
      headers: { "x-external-user-id": user, "x-external-user-email": `${user}@example.org` },
    });

  async function invokeEveryAgent(): Promise<void> {
    const statuses: Record<string, number[]> = {};
    const call = async (agent: string, input: string, user?: string) => {
      const answer = await invoke(agent, input, user);
      statuses[agent] = [...(statuses[agent] ?? []), answer.status];
      return answer;
    };
    for (const agent of ["bearer", "apiKey", "basic", "oauth", "hmac"])
      for (let index = 0; index < 2; index++) await call(agent, `${agent} call ${index}`, `u-${index}`);
    await call("echo", "echo call");

    // A new bearer token, and the API key kept by sending its mask back.
    const patched = await api("PATCH", `/api/v1/external-agents/${agentIds.bearer}`, {
      body: { auth_config: { token: CANARY.bearer.value } },
    });
    const read = await api("GET", `/api/v1/external-agents/${agentIds.apiKey}`);
    const mask = (read.json as { auth_config: { key: string } }).auth_config.key;
    const kept = await api("PATCH", `/api/v1/external-agents/${agentIds.apiKey}`, {
      body: { auth_config: { key: mask, header_name: "X-Api-Key" }, description: "key kept" },
    });
    expect([patched.status, kept.status]).toEqual([200, 200]);
    changes.push(
      { action: "external_agent.updated", resourceId: agentIds.bearer as string },
      { action: "external_agent.updated", resourceId: agentIds.apiKey as string },
    );
    await call("bearer", "after the new token");
    await call("apiKey", "after the kept key");

    expect(statuses).toEqual({
      bearer: [200, 200, 200],
      apiKey: [200, 200, 200],
      basic: [200, 200],
      oauth: [200, 200],
      hmac: [200, 200],
      echo: [502],
    });
  }

  /** A held call, approved by the admin, then run with its credential. */
  async function approveHeldCall(): Promise<void> {
    const held = await invoke("custom", "needs a yes", "u-approve");
    expect(held.status, held.text).toBe(202);
    const { approval_id: approvalId, invocation_id: invocationId } = held.json as {
      approval_id: string;
      invocation_id: string;
    };
    approvalIds.push(approvalId);
    const approved = await api("POST", `/api/v1/approvals/${approvalId}/approve`, {
      body: { reason: "chaos" },
    });
    expect(approved.status, approved.text).toBe(200);
    await until(async () => (await invocationStatus(invocationId)) === "success", 20_000);
    expect(await invocationStatus(invocationId)).toBe("success");
  }

  async function invocationStatus(id: string): Promise<string | undefined> {
    const { rows } = await database.query(`SELECT status FROM ${schema}.invocations WHERE id = $1`, [id]);
    return rows[0]?.status;
  }

  const announcedOnNats = (jobId: string) =>
    natsTraffic.texts.some((text) => text.startsWith(`${subjectPrefix}.status.`) && text.includes(jobId));
  const endedOnRedis = (jobId: string) =>
    jobMessages.texts.some(
      (text) => text.startsWith(`langgraph:stream:${jobId}\n`) && text.includes('"end"'),
    );

  /** Two jobs through JetStream with an external_agent node: one calls the bearer agent, one the failing agent. */
  async function runJobs(): Promise<void> {
    for (const agent of ["bearer", "echo"]) {
      const id = `${jobPrefix}${agent}`;
      const answer = await api("POST", "/api/v1/jobs", {
        body: {
          job_id: id,
          agent_definition: oneNodeGraph(`leaks-${agent}`, {
            id: "call",
            type: "external_agent",
            agent_id: agentIds[agent],
          }),
          input_payload: { text: `job for ${agent}` },
        },
      });
      expect(answer.status, answer.text).toBe(202);
      jobIds.push(id);
    }
    // Both signals go out once the outcome is stored: the result event on NATS, the end of the Redis stream.
    await until(() => jobIds.every((id) => announcedOnNats(id) && endedOnRedis(id)), 30_000);
    const { rows } = await database.query(
      `SELECT id, status FROM ${schema}.jobs WHERE id = ANY($1) ORDER BY id`,
      [jobIds],
    );
    expect(rows).toEqual([
      { id: `${jobPrefix}bearer`, status: "completed" },
      { id: `${jobPrefix}echo`, status: "failed" },
    ]);
  }

  /** Waits until every delivery (platform notices and webhook events) is delivered or dead. */
  async function settleDeliveries(): Promise<void> {
    const open = async () => {
      const { rows } = await database.query(
        `SELECT count(*)::int AS n FROM ${schema}.deliveries WHERE status NOT IN ('delivered', 'dead')`,
      );
      return rows[0].n as number;
    };
    await until(async () => (await open()) === 0, 30_000);
    expect(await open()).toBe(0);
  }

  /** Every GET route of the OpenAPI document, once per id of the kind its path names. */
  async function crawlGetRoutes(): Promise<void> {
    const document = await api("GET", "/openapi.json");
    const paths = Object.entries((document.json as { paths: Record<string, object> }).paths)
      .filter(([, operations]) => "get" in operations)
      .map(([path]) => path);
    const ids = await idsByCollection();
    const urls = [
      ...paths.flatMap((path) => withIds(path, ids)),
      ...["json", "jsonl", "csv"].map((format) => `/api/v1/lineage/export?format=${format}`),
      ...Object.values(agentIds).map((id) => `/api/v1/lineage/graph?external_agent_id=${id}`),
    ];
    // A few at a time: enough to be quick, few enough to leave the CPU to the rest.
    for (let start = 0; start < urls.length; start += 6) {
      await Promise.all(
        urls.slice(start, start + 6).map((url) =>
          api("GET", url).catch(() => {
            unansweredCrawls += 1;
          }),
        ),
      );
    }
  }

  /** Ids to put into a path, by the collection named before its parameter. */
  async function idsByCollection(): Promise<Record<string, string[]>> {
    const column = async (table: string) =>
      (await database.query(`SELECT id FROM ${schema}.${table} ORDER BY id`)).rows.map(
        (row) => row.id as string,
      );
    const invocations = await column("invocations");
    return {
      "external-agents": Object.values(agentIds),
      invocations,
      lineage: invocations,
      users: ["u-0", "u-1", "u-0@example.org"],
      deliveries: await column("deliveries"),
      webhooks: [webhookId],
      jobs: jobIds,
      approvals: approvalIds,
    };
  }

  /** `path` once per id its parameter can take; a collection with none (policies, managed agents) gets an unknown id. */
  function withIds(path: string, ids: Record<string, string[]>): string[] {
    const parameter = /\/([^/]+)\/\{[^}]+\}/.exec(path);
    if (!parameter) return [path];
    const values = ids[parameter[1] as string] ?? ["unknown"];
    return values.map((id) => path.replace(/\{[^}]+\}/, encodeURIComponent(id)));
  }

  /** One step of the setup every test reads; its failure names the step. */
  async function step(name: string, body: () => Promise<unknown>): Promise<void> {
    try {
      await body();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`setup step "${name}" failed: ${reason}`, { cause: error });
    }
  }

  async function startServices(): Promise<void> {
    nats = await startRestartableNatsServer();
    natsTraffic = await recordNatsTraffic(nats.url);
    jobMessages = await recordRedisMessages(`langgraph:stream:${jobPrefix}*`);
    redis = new Redis(TEST_REDIS_URL);
    database = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await database.connect();
    agents = await startMockAgent(answerAsAgent);
    platforms = await startMockAgent(answerAsPlatform);
  }

  async function startSteward(): Promise<void> {
    const platformsBase = new URL(platforms.url).origin;
    ({ steward, url: base } = await startStewardServer({
      ...env,
      NATS_URL: nats.url,
      STEWARD_TELEGRAM_API_URL: `${platformsBase}/telegram`,
      STEWARD_NOTION_API_URL: `${platformsBase}/notion`,
    }));
  }

  // Inside the config's 120 s: a step's own bounded wait (a start, a settling) runs out first and names it.
  beforeAll(async () => {
    await step("start NATS, the recorders and the stand-ins", startServices);
    await step("start steward serve", startSteward);
    await step("subscribe a webhook", subscribeWebhook);
    await step("register the agents", registerAgents);
    await step("send inputs that must be refused", sendRefusedInputs);
    await step("invoke every agent", invokeEveryAgent);
    await step("approve a held call", approveHeldCall);
    await step("run the jobs", runJobs);
    await step("settle the deliveries", settleDeliveries);
    await step("crawl the GET routes", crawlGetRoutes);
  }, 110_000);

  afterAll(async () => {
    // SIGKILL: a shutdown that hangs must not hang the hook; nothing is checked after this.
    await steward?.kill("SIGKILL");
    await natsTraffic?.connection.close();
    jobMessages?.connection.disconnect();
    redis?.disconnect();
    await database?.end();
    await agents?.close();
    await platforms?.close();
    await nats?.dispose();
  });

  /** Counts the canaries found in a place's texts and tallies them: one case per canary. */
  function tallyPlace(
    context: TestContext,
    place: string,
    texts: (canary: Canary) => readonly string[],
    extra: { lost?: number; sealedAsCiphertext?: (canary: Canary) => boolean } = {},
  ): void {
    let handled = 0;
    let leaked = 0;
    const problems: string[] = [];
    for (const canary of canaries) {
      const seen = sightings(canary, texts(canary));
      const sealed = extra.sealedAsCiphertext?.(canary) ?? true;
      leaked += seen;
      if (seen > 0) problems.push(`${canary.label} found ×${seen}`);
      if (!sealed) problems.push(`${canary.label} not stored sealed`);
      if (seen === 0 && sealed) handled += 1;
    }
    tally(context, {
      fault: `canary secrets in ${place}${problems.length > 0 ? ` (${problems.join("; ")})` : ""}`,
      tried: canaries.length,
      handled,
      lost: extra.lost ?? null,
      leaked,
    });
  }

  /** A request a stand-in received as one text: its line, headers and body. */
  const requestText = (request: ReceivedRequest) =>
    [
      `${request.method} ${request.path}`,
      ...Object.entries(request.headers).map(([name, value]) => `${name}: ${value}`),
      request.rawBody,
    ].join("\n");

  it("uses every stored credential where it belongs — agent, token endpoint, platform, webhook receiver — and sends it nowhere else", (context) => {
    const atAgent = (path: string) => (request: ReceivedRequest) =>
      agents.requests.includes(request) && request.path === path;
    const atPlatform = (prefix: string) => (request: ReceivedRequest) =>
      platforms.requests.includes(request) && request.path.startsWith(prefix);
    const pathHas = (canary: Canary) => (request: ReceivedRequest) => request.path.includes(canary.value);
    /**
     * Per credential: the requests it is for, what in one of them shows it used, and whether
     * it only signs (then no request may carry it as such).
     */
    const uses: Array<{
      canary: Canary;
      at: (request: ReceivedRequest) => boolean;
      shows: (request: ReceivedRequest) => boolean;
      signs?: true;
    }> = [
      {
        canary: CANARY.replacedBearer,
        at: atAgent("/bearer"),
        shows: (r) => r.headers.authorization === `Bearer ${CANARY.replacedBearer.value}`,
      },
      {
        canary: CANARY.bearer,
        at: atAgent("/bearer"),
        shows: (r) =>
          r.body.input === "after the new token" &&
          r.headers.authorization === `Bearer ${CANARY.bearer.value}`,
      },
      { canary: CANARY.slackUrl, at: atPlatform("/slack/"), shows: pathHas(CANARY.slackUrl) },
      {
        canary: CANARY.apiKey,
        at: atAgent("/api-key"),
        shows: (r) => r.body.input === "after the kept key" && r.headers["x-api-key"] === CANARY.apiKey.value,
      },
      {
        canary: CANARY.telegramToken,
        at: atPlatform("/telegram/"),
        shows: (r) => r.path === `/telegram/bot${CANARY.telegramToken.value}/sendMessage`,
      },
      {
        canary: CANARY.basicPassword,
        at: atAgent("/basic"),
        shows: (r) => r.headers.authorization === `Basic ${basicCredentials(CANARY.basicPassword.value)}`,
      },
      { canary: CANARY.discordUrl, at: atPlatform("/discord/"), shows: pathHas(CANARY.discordUrl) },
      {
        canary: CANARY.clientSecret,
        at: atAgent("/token"),
        shows: (r) => r.rawBody.includes(`client_secret=${CANARY.clientSecret.value}`),
      },
      {
        canary: CANARY.accessToken,
        at: atAgent("/oauth"),
        shows: (r) => r.headers.authorization === `Bearer ${CANARY.accessToken.value}`,
      },
      {
        canary: CANARY.notionToken,
        at: atPlatform("/notion/"),
        shows: (r) => r.headers.authorization === `Bearer ${CANARY.notionToken.value}`,
      },
      {
        canary: CANARY.hmacSecret,
        at: atAgent("/hmac"),
        shows: (r) => signedWith(Buffer.from(CANARY.hmacSecret.value), r),
        signs: true,
      },
      {
        canary: CANARY.customHttpUrl,
        at: atPlatform("/hook/"),
        shows: (r) => pathHas(CANARY.customHttpUrl)(r) && signedWith(Buffer.from(CANARY.hmacSecret.value), r),
      },
      {
        canary: CANARY.customHttpHeader,
        at: atPlatform("/hook/"),
        shows: (r) => r.headers["x-delivery-token"] === CANARY.customHttpHeader.value,
      },
      {
        canary: CANARY.customHeader,
        at: atAgent("/custom"),
        shows: (r) => r.headers["x-agent-secret"] === CANARY.customHeader.value,
      },
      { canary: CANARY.teamsUrl, at: atPlatform("/teams/"), shows: pathHas(CANARY.teamsUrl) },
      {
        canary: CANARY.echoedToken,
        at: atAgent("/echo"),
        shows: (r) => r.headers.authorization === `Bearer ${CANARY.echoedToken.value}`,
      },
      { canary: CANARY.mattermostUrl, at: atPlatform("/mattermost/"), shows: pathHas(CANARY.mattermostUrl) },
      {
        canary: webhookSecret,
        at: atPlatform("/webhooks"),
        shows: (r) => signedWith(Buffer.from(webhookSecret.value.slice(6), "base64"), r),
        signs: true,
      },
    ];
    const received = [...agents.requests, ...platforms.requests];
    let handled = 0;
    let leaked = 0;
    const problems: string[] = [];
    for (const { canary, at, shows, signs } of uses) {
      const used = received.some((request) => at(request) && shows(request));
      const elsewhere = sightings(
        canary,
        received.filter((request) => signs || !at(request)).map(requestText),
      );
      leaked += elsewhere;
      if (!used) problems.push(`${canary.label} unused`);
      if (elsewhere > 0) problems.push(`${canary.label} sent elsewhere ×${elsewhere}`);
      if (used && elsewhere === 0) handled += 1;
    }
    tally(context, {
      fault: `credentials used where they belong, only there${problems.length > 0 ? ` (${problems.join("; ")})` : ""}`,
      tried: uses.length,
      handled,
      lost: null,
      leaked,
    });
  });

  it("keeps every canary out of every API answer, the OpenAPI GET routes crawled included", (context) => {
    tallyPlace(
      context,
      "API answers (crawled GET routes included)",
      (canary) =>
        answers
          .filter((answer) => !(answer.revealsWebhookSecret && canary === webhookSecret))
          .map((answer) => answer.text),
      { lost: unansweredCrawls },
    );
  });

  it("keeps every canary out of the process output, at LOG_LEVEL=debug", (context) => {
    expect(steward.output()).toContain("Server listening");
    tallyPlace(context, "steward serve output (debug)", () => [steward.output()]);
  });

  it("keeps every canary out of the audit events", async (context) => {
    const { rows } = await database.query(
      `SELECT action, resource_id, row_to_json(event)::text AS text FROM ${schema}.audit_events AS event`,
    );
    const unaudited = changes.filter(
      (change) => !rows.some((row) => row.action === change.action && row.resource_id === change.resourceId),
    );
    tallyPlace(context, "audit events", () => rows.map((row) => row.text as string), {
      lost: unaudited.length,
    });
  });

  it("keeps every canary out of the lineage records, through the API and in the database", async (context) => {
    const exported = await api("GET", "/api/v1/lineage/export?format=jsonl");
    const records = await Promise.all([...invocationIds].map((id) => api("GET", `/api/v1/lineage/${id}`)));
    const { rows } = await database.query(
      `SELECT row_to_json(invocation)::text AS text FROM ${schema}.invocations AS invocation`,
    );
    const unrecorded = [...invocationIds].filter((id) => !exported.text.includes(`"invocation_id":"${id}"`));
    tallyPlace(
      context,
      "lineage records (API and database)",
      () => [
        exported.text,
        ...records.map((record) => record.text),
        ...rows.map((row) => row.text as string),
      ],
      { lost: unrecorded.length },
    );
  });

  it("keeps every canary out of the NATS messages of the run", (context) => {
    tallyPlace(context, "NATS messages", () => natsTraffic.texts, {
      lost: jobIds.filter((id) => !announcedOnNats(id)).length,
    });
  });

  it("keeps every canary out of the Redis keys, values and job streams of the run", async (context) => {
    const keys = await redisKeysAndValues(redis, redisPrefix);
    expect(keys.length).toBeGreaterThan(0);
    tallyPlace(context, "Redis keys, values and job streams", () => [...keys, ...jobMessages.texts], {
      lost: jobIds.filter((id) => !endedOnRedis(id)).length,
    });
  });

  it("holds stored credentials in a pg_dump only as ciphertext", async (context) => {
    const version = (await database.query("SHOW server_version")).rows[0].server_version as string;
    const dump = await dumpSchemaData(schema, version);
    /** Per stored canary: its sealed value is in the dump and opens to it (a URL holds it in its path). */
    const storedSealed = new Map<Canary, boolean>();
    for (const place of sealedPlaces) {
      const { rows } = await database.query(
        `SELECT ${place.column} AS value FROM ${schema}.${place.table} WHERE id = $1`,
        [place.id],
      );
      let sealed: unknown = rows[0]?.value;
      for (const key of place.keys) sealed = (sealed as Record<string, unknown> | undefined)?.[key];
      const text = (sealed as { $sealed?: unknown } | undefined)?.$sealed;
      storedSealed.set(
        place.canary,
        typeof text === "string" &&
          dump.includes(text) &&
          box.open(text, place.context).includes(place.canary.value),
      );
    }
    tallyPlace(context, "a pg_dump of the schema", () => [dump], {
      // A stored credential must be there, sealed; one that was only ever refused or replaced, nowhere.
      sealedAsCiphertext: (canary) => storedSealed.get(canary) ?? true,
      lost: [...storedSealed.values()].filter((found) => !found).length,
    });
  });

  describe("tampering", () => {
    /** Registers an agent through the API and answers its id. */
    async function register(body: Record<string, unknown>, key?: string): Promise<string> {
      const answer = await api("POST", "/api/v1/external-agents", {
        body: { name: `tamper-${randomBytes(3).toString("hex")}`, ...body },
        key,
      });
      expect(answer.status, answer.text).toBe(201);
      return (answer.json as { id: string }).id;
    }

    /** Rewrites one sealed value of an agent in the database, behind Steward's back. */
    async function tamper(agentId: string, column: string, key: string, part: "iv" | "tag" | "ciphertext") {
      const { rows } = await database.query(
        `SELECT ${column} -> $2 ->> '$sealed' AS sealed FROM ${schema}.external_agents WHERE id = $1`,
        [agentId, key],
      );
      const sealed = rows[0]?.sealed as string;
      await database.query(
        `UPDATE ${schema}.external_agents SET ${column} = jsonb_set(${column}, $2::text[], to_jsonb($3::text)) WHERE id = $1`,
        [agentId, [key, "$sealed"], flipByte(sealed, part)],
      );
    }

    /**
     * A bearer token with one byte of its `part` flipped: the call must end in a 500 that
     * says so (no stack trace), logged at error level, without any request reaching the agent.
     */
    async function invokeWithTamperedToken(part: "iv" | "tag" | "ciphertext") {
      const canary = newCanary(`tampered ${part}`);
      const path = `/tampered/${part}`;
      const agentId = await register({
        platform: "custom_http",
        webhook_url: `${new URL(agents.url).origin}${path}`,
        auth_type: "bearer_token",
        auth_config: { token: canary.value },
      });
      await tamper(agentId, "auth_config", "token", part);
      const answer = await api("POST", `/api/v1/external-agents/${agentId}/invoke`, {
        body: { input: "tampered" },
      });
      const envelope = (answer.json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      const message = `The stored credentials of external agent ${agentId} cannot be decrypted`;
      const reached = agents.requests.filter((request) => request.path === path).length;
      // The log line comes through a pipe: it may arrive after the answer.
      await until(() => loggedAsError(message), 5_000);
      return {
        label: `flipped ${part}`,
        handled:
          answer.status === 500 &&
          envelope?.code === "INTERNAL_ERROR" &&
          String(envelope.message).startsWith(message) &&
          String(envelope.message).includes("nothing was sent") &&
          !STACK_TRACE.test(answer.text) &&
          loggedAsError(message) &&
          reached === 0,
        leaked: sightings(canary, [answer.text, steward.output()]),
      };
    }

    /** Whether `steward serve` logged a line at error level (pino's 50) holding `message`. */
    const loggedAsError = (message: string) =>
      steward
        .output()
        .split("\n")
        .some((line) => line.includes('"level":50') && line.includes(message));

    /**
     * A Slack URL with a flipped byte: the call goes out (its own auth is intact), and its
     * delivery ends dead without any request reaching the platform.
     */
    async function deliverWithTamperedPlatformUrl() {
      const canary = newCanary("tampered platform URL");
      const agentId = await register({
        platform: "slack",
        webhook_url: `${new URL(agents.url).origin}/plain`,
        platform_config: {
          webhook_url: `${new URL(platforms.url).origin}/tampered-slack/${canary.value}`,
          channel: "#ops",
        },
      });
      await tamper(agentId, "platform_config", "webhook_url", "ciphertext");
      const answer = await api("POST", `/api/v1/external-agents/${agentId}/invoke`, {
        body: { input: "deliver me" },
      });
      const delivery = async () =>
        (
          await database.query(
            `SELECT status, last_error FROM ${schema}.deliveries WHERE invocation_id = $1 AND target = 'platform'`,
            [answer.headers.get("x-invocation-id")],
          )
        ).rows[0] as { status: string; last_error: string } | undefined;
      await until(async () => ["delivered", "dead"].includes((await delivery())?.status ?? ""), 20_000);
      const final = await delivery();
      const reached = platforms.requests.filter((request) =>
        request.path.startsWith("/tampered-slack/"),
      ).length;
      return {
        label: "flipped platform URL",
        handled: answer.status === 200 && final?.status === "dead" && reached === 0,
        leaked: sightings(canary, [answer.text, final?.last_error ?? "", steward.output()]),
      };
    }

    it("fails closed on a flipped byte in a stored credential: nothing goes out", async (context) => {
      const outcomes = [
        await invokeWithTamperedToken("ciphertext"),
        await invokeWithTamperedToken("tag"),
        await invokeWithTamperedToken("iv"),
        await deliverWithTamperedPlatformUrl(),
      ];
      const unhandled = outcomes.filter((outcome) => !outcome.handled).map((outcome) => outcome.label);
      tally(context, {
        fault: `tampered ciphertext${unhandled.length > 0 ? ` (not handled: ${unhandled.join(", ")})` : ""}`,
        tried: outcomes.length,
        handled: outcomes.filter((outcome) => outcome.handled).length,
        // Nothing here is meant to arrive: the calls are refused, the delivery is meant to end dead.
        lost: null,
        leaked: outcomes.reduce((sum, outcome) => sum + outcome.leaked, 0),
      });
    });

    /** A new organization with `count` successful calls in its lineage chain; answers its id and admin key. */
    async function organizationWithCalls(count: number): Promise<{ organizationId: string; key: string }> {
      const org = await api("POST", "/api/v1/orgs", { body: { name: `tamper-${run}` } });
      const organizationId = (org.json as { id: string }).id;
      const keyAnswer = await api("POST", "/api/v1/api-keys", {
        body: { name: "lineage admin", role: "admin", organization_id: organizationId },
      });
      const key = (keyAnswer.json as { key: string }).key;
      const agentId = await register(
        { platform: "custom_http", webhook_url: `${new URL(agents.url).origin}/plain` },
        key,
      );
      for (let index = 0; index < count; index++) {
        const call = await api("POST", `/api/v1/external-agents/${agentId}/invoke`, {
          key,
          body: { input: `chained ${index}` },
          headers: { "x-external-user-id": `u-${index}`, "x-external-user-email": `u-${index}@example.org` },
        });
        expect(call.status, call.text).toBe(200);
      }
      return { organizationId, key };
    }

    it("names the edited row in /api/v1/lineage/verify", async (context) => {
      const { organizationId, key } = await organizationWithCalls(5);
      const verify = async () => (await api("GET", "/api/v1/lineage/verify", { key })).json;
      expect(await verify()).toEqual({ valid: true, checked: 5, first_broken: null });

      // Newest first: each edit sits before the one already made, so verification names it.
      const edits = [
        { seq: 5, column: "status", value: "failure", type: "text", reason: "record hash does not match" },
        { seq: 4, column: "cost_usd", value: "999", type: "numeric", reason: "record hash does not match" },
        {
          seq: 3,
          column: "response_body",
          value: '{"result": "forged"}',
          type: "jsonb",
          reason: "identity or body content does not match its hash",
        },
        {
          seq: 2,
          column: "external_user_email",
          value: "someone@else.example",
          type: "text",
          reason: "identity or body content does not match its hash",
        },
      ];
      let handled = 0;
      for (const edit of edits) {
        const { rows } = await database.query(
          `UPDATE ${schema}.invocations SET ${edit.column} = $1::${edit.type} WHERE organization_id = $2 AND chain_seq = $3 RETURNING id`,
          [edit.value, organizationId, edit.seq],
        );
        const named = {
          valid: false,
          checked: edit.seq - 1,
          first_broken: { invocation_id: rows[0]?.id, chain_seq: edit.seq, reason: edit.reason },
        };
        if (isDeepStrictEqual(await verify(), named)) handled += 1;
      }
      tally(context, { fault: "edited lineage row", tried: edits.length, handled, lost: null, leaked: null });
    });
  });
});

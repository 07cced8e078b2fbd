import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDnsServer, type TestDnsServer } from "../helpers/dns-server.js";
import { until } from "../helpers/eventually.js";
import { oneNodeGraph } from "../helpers/jobs.js";
import { connectableCorpus, SSRF_CORPUS } from "../helpers/ssrf-corpus.js";
import { startTestSteward } from "../helpers/steward.js";
import { type StewardProcess, startStewardServer, stewardEnvironment } from "../helpers/steward-process.js";
import {
  answer500,
  type CanaryServer,
  endlessBody,
  type HostileHandler,
  type HostileServer,
  neverAnswer,
  redirectTo,
  startCanaryServer,
  startHostileServer,
  trickleOneBytePerSecond,
} from "./hostile-server.js";
import { occurrences } from "./secret-search.js";
import { tally } from "./tally.js";

/**
 * Issue 11, hostile peers: agents and chat platforms that answer 500, never answer,
 * trickle a byte a second, send a 5 GB body or redirect to a canary meet a Steward
 * process with small deadlines. Every call ends within its deadline with an error
 * envelope, every delivery ends dead within bounds, memory stays flat and the canary is
 * never reached. Then the SSRF corpus, wherever a URL enters Steward: refused at
 * registration with a 400 naming the field, and refused by the guard at connect time.
 */

/**
 * Small deadlines, yet with room for a loaded 2-core machine to finish an instant answer
 * (a 500, a redirect) in time, so those end as what the peer said, not as timeouts.
 */
const INVOKE_TIMEOUT_MS = 3_000;
const DELIVERY_TIMEOUT_MS = 2_000;
/** Room for a loaded 2-core machine on top of a deadline; a hang would blow far past it. */
const SLACK_MS = 5_000;
/** A request to Steward not answered by then is given up (and counted as unhandled). */
const GIVE_UP_MS = 30_000;
const CALLS_PER_PEER = 4;
/**
 * The bound on Steward's peak RSS growth. What Steward may legitimately hold is capped:
 * 1 MiB (STEWARD_MAX_RESPONSE_BYTES' default) per call for 28 concurrent calls, 8 KiB
 * per delivery answer, plus heap growth from ordinary work: 35 to 45 MB in practice. A
 * Steward that read the endless bodies past the cap for their 10 s deadline grows by
 * 400 MB and more here (measured with the cap raised to 100 MB).
 */
const MAX_RSS_GROWTH_MB = 150;

type Send = <T>(method: string, path: string, body?: unknown) => Promise<Answer<T>>;

interface Answer<T> {
  status: number;
  body: T | undefined;
  text: string;
  ms: number;
}

interface ErrorEnvelope {
  error?: {
    code?: string;
    message?: string;
    details?: { invocation_id?: string; errors?: Array<{ field: string }> };
  };
}

interface Delivery {
  id: string;
  target: string;
  invocation_id: string | null;
  status: string;
  attempts: number;
  last_error: string | null;
  attempt_log?: Array<{ duration_ms: number; error: string | null }>;
}

/** Talks to a Steward process's API as its admin, timing each answer. */
function apiOf(url: string, headers: Record<string, string>): Send {
  return async <T>(method: string, path: string, body?: unknown) => {
    const started = performance.now();
    const response = await fetch(`${url}/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(GIVE_UP_MS),
    });
    const text = await response.text();
    return { status: response.status, body: parsed<T>(text), text, ms: performance.now() - started };
  };
}

function parsed<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** A /proc/<pid>/status figure in MB: VmRSS (resident now) or VmHWM (peak since the last reset). */
function residentMb(pid: number, field: "VmRSS" | "VmHWM"): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!match) throw new Error(`no ${field} for process ${pid}`);
  return Number(match[1]) / 1024;
}

/** Restarts peak-RSS (VmHWM) tracking from the current RSS: Linux's clear_refs "5". */
function resetPeakResident(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, "5");
}

/** Every delivery of an agent (one page holds them all here). */
async function deliveriesOf(send: Send, agentId: string): Promise<Delivery[]> {
  const page = await send<{ items: Delivery[] }>("GET", `/deliveries?external_agent_id=${agentId}&limit=100`);
  return page.body?.items ?? [];
}

/** The field names of a 400 VALIDATION_ERROR, or undefined for any other answer. */
function refusedFields(answer: Answer<ErrorEnvelope>): string[] | undefined {
  const error = answer.body?.error;
  if (answer.status !== 400 || error?.code !== "VALIDATION_ERROR") return undefined;
  return (error.details?.errors ?? []).map((problem) => problem.field);
}

/** One way into Steward's outbound calls, as the connect-time row adds it up. */
interface Outcome {
  tried: number;
  handled: number;
  lost: number;
}

const INVOCATION_COMPLETED = "external_agent.invocation.completed";
const FINAL_DELIVERY = new Set(["dead", "delivered"]);
const REFUSED_BY_GUARD = /SSRF guard/;
/**
 * A stack trace in an answer, raw or JSON-escaped: a frame ("    at fn (file:1:2)"), a
 * source position ("file.js:1") or an "Error:" header opening a line or a string.
 */
const STACK_TRACE =
  /(?:\n|\\n)\s*at \S|\bat \S+ \(\S+:\d+:\d+\)|\.[cm]?[jt]s:\d+|(?:^|\n|\\n|")\s*\w*Error: /;

interface HostilePeer {
  name: string;
  /** Names its redirect target on the canary, so a hit says who was followed. */
  slug: string;
  handler(canary: CanaryServer, slug: string): HostileHandler;
  /** The agent's own deadline (config.timeout_seconds), when not STEWARD_INVOKE_TIMEOUT_MS. */
  timeoutSeconds?: number;
  /** What every invoke of an agent here answers, and the error its record keeps. */
  invoke: { status: number; code: string; recordError: RegExp };
  /** Attempts a delivery to a platform here makes before it is dead (1: a final answer). */
  deliveryAttempts: number;
}

const UPSTREAM_TIMEOUT = { status: 504, code: "UPSTREAM_TIMEOUT", recordError: /deadline/ };
/**
 * An endless body gets a long deadline of its own, so only the size cap can end the call
 * within the bound every answer is held to; a Steward reading on would fill its memory.
 */
const ENDLESS_BODY_TIMEOUT_SECONDS = 10;
const TOO_LARGE = { status: 502, code: "UPSTREAM_ERROR", recordError: /response too large/ };
const REDIRECTED = { status: 502, code: "UPSTREAM_ERROR", recordError: /redirect .* not followed/ };
const redirectToCanary = (status: number) => (canary: CanaryServer, slug: string) =>
  redirectTo(status, `${canary.url}/${slug}`);

const HOSTILE_PEERS: HostilePeer[] = [
  {
    name: "answers 500",
    slug: "500",
    handler: () => answer500,
    invoke: { status: 502, code: "UPSTREAM_ERROR", recordError: /HTTP 500/ },
    deliveryAttempts: 3,
  },
  {
    name: "never answers",
    slug: "hang",
    handler: () => neverAnswer,
    invoke: UPSTREAM_TIMEOUT,
    deliveryAttempts: 3,
  },
  {
    name: "trickles 1 byte/s",
    slug: "trickle",
    handler: () => trickleOneBytePerSecond,
    invoke: UPSTREAM_TIMEOUT,
    deliveryAttempts: 3,
  },
  // A 200 whose body is not Slack's "ok" is a final refusal: one attempt.
  {
    name: "5 GB body, announced",
    slug: "5gb-announced",
    handler: () => endlessBody(true),
    timeoutSeconds: ENDLESS_BODY_TIMEOUT_SECONDS,
    invoke: TOO_LARGE,
    deliveryAttempts: 1,
  },
  {
    name: "5 GB body, chunked",
    slug: "5gb-chunked",
    handler: () => endlessBody(false),
    timeoutSeconds: ENDLESS_BODY_TIMEOUT_SECONDS,
    invoke: TOO_LARGE,
    deliveryAttempts: 1,
  },
  {
    name: "302 to a canary",
    slug: "302",
    handler: redirectToCanary(302),
    invoke: REDIRECTED,
    deliveryAttempts: 1,
  },
  {
    name: "307 to a canary",
    slug: "307",
    handler: redirectToCanary(307),
    invoke: REDIRECTED,
    deliveryAttempts: 1,
  },
];

/** Steward's resident memory before the hostile calls and its peak while they ran, in MB. */
interface Memory {
  baselineMb: number;
  peakMb: number;
}

/** A hostile peer as one agent (its URL) and its Slack platform (the webhook) both use it. */
interface PeerRun {
  peer: HostilePeer;
  server: HostileServer;
  agentId: string;
  /** The agent's bearer token and the Slack webhook's token: secrets that must stay put. */
  agentToken: string;
  platformToken: string;
  calls: Array<{ answer?: Answer<ErrorEnvelope>; failure?: string }>;
  deliveries: Delivery[];
}

describe("hostile agents and platforms", () => {
  const { headers, env } = stewardEnvironment({
    STEWARD_INVOKE_TIMEOUT_MS: String(INVOKE_TIMEOUT_MS),
    STEWARD_DELIVERY_TIMEOUT_MS: String(DELIVERY_TIMEOUT_MS),
    STEWARD_DELIVERY_RETRY_DELAYS: "100ms,100ms",
  });
  let canary: CanaryServer;
  let steward: StewardProcess | undefined;
  let send: Send;
  const servers: HostileServer[] = [];
  const runs: PeerRun[] = [];
  let load: Promise<Memory> | undefined;

  async function registerAgentAt(peer: HostilePeer, server: HostileServer): Promise<PeerRun> {
    const agentToken = `agent-${randomBytes(16).toString("hex")}`;
    const platformToken = randomBytes(16).toString("hex");
    const registered = await send<{ id: string }>("POST", "/external-agents", {
      name: `hostile-${peer.slug}`,
      platform: "slack",
      webhook_url: `${server.url}/agent`,
      auth_type: "bearer_token",
      auth_config: { token: agentToken },
      ...(peer.timeoutSeconds ? { config: { timeout_seconds: peer.timeoutSeconds } } : {}),
      platform_config: { webhook_url: `${server.url}/services/T0/B0/${platformToken}`, channel: "#chaos" },
    });
    if (registered.status !== 201 || !registered.body)
      throw new Error(`registering failed: ${registered.text}`);
    return {
      peer,
      server,
      agentId: registered.body.id,
      agentToken,
      platformToken,
      calls: [],
      deliveries: [],
    };
  }

  async function invokeConcurrently(run: PeerRun): Promise<void> {
    run.calls = await Promise.all(
      Array.from({ length: CALLS_PER_PEER }, (_, index) =>
        send<ErrorEnvelope>("POST", `/external-agents/${run.agentId}/invoke`, {
          input: `hostile ${index}`,
        }).then(
          (answer) => ({ answer }),
          (error: unknown) => ({ failure: String(error) }),
        ),
      ),
    );
  }

  async function platformDeliveries(run: PeerRun): Promise<Delivery[]> {
    return (await deliveriesOf(send, run.agentId)).filter((delivery) => delivery.target === "platform");
  }

  /** Every call that reached its agent owes its platform one delivery, and each has ended. */
  function allDeliveriesEnded(): boolean {
    return runs.every(
      (run) =>
        run.deliveries.length === run.calls.length &&
        run.deliveries.every((delivery) => FINAL_DELIVERY.has(delivery.status)),
    );
  }

  /**
   * Sends every hostile call at once and waits for what they set off, measuring Steward's
   * peak memory meanwhile. The tests share one run, paid for by the first within its own
   * timeout rather than the setup hook's. A wait that runs out leaves what was seen by
   * then, which the tests count as not handled.
   */
  async function sendHostileLoad(pid: number): Promise<Memory> {
    resetPeakResident(pid);
    const baselineMb = residentMb(pid, "VmRSS");
    await Promise.all(runs.map(invokeConcurrently));
    await until(async () => {
      for (const run of runs) run.deliveries = await platformDeliveries(run);
      return allDeliveriesEnded();
    }, 30_000);
    // The listing leaves out the attempt log.
    for (const run of runs) {
      run.deliveries = await Promise.all(
        run.deliveries.map(
          async (delivery) => (await send<Delivery>("GET", `/deliveries/${delivery.id}`)).body ?? delivery,
        ),
      );
    }
    await until(() => runs.every((run) => run.server.openResponses() === 0), 10_000);
    return { baselineMb, peakMb: residentMb(pid, "VmHWM") };
  }

  function hostileLoad(): Promise<Memory> {
    load ??= sendHostileLoad(steward?.child.pid as number);
    return load;
  }

  beforeAll(async () => {
    canary = await startCanaryServer();
    const server = await startStewardServer(env);
    steward = server.steward;
    send = apiOf(server.url, headers);
    for (const peer of HOSTILE_PEERS) {
      const hostile = await startHostileServer(peer.handler(canary, peer.slug));
      servers.push(hostile);
      runs.push(await registerAgentAt(peer, hostile));
    }
  });

  afterAll(async () => {
    await steward?.kill("SIGKILL");
    for (const server of servers) await server.close();
    await canary?.close();
  });

  /**
   * The call answered within STEWARD_INVOKE_TIMEOUT_MS plus slack (an endless body long
   * before its own deadline), with the peer's error envelope and no stack trace.
   */
  function answeredAsSpecified(answer: Answer<ErrorEnvelope> | undefined, peer: HostilePeer): boolean {
    const error = answer?.body?.error;
    return (
      answer !== undefined &&
      answer.status === peer.invoke.status &&
      error?.code === peer.invoke.code &&
      typeof error.message === "string" &&
      !STACK_TRACE.test(answer.text) &&
      answer.ms <= INVOKE_TIMEOUT_MS + SLACK_MS
    );
  }

  it("answers every call to a hostile agent within its deadline with an error envelope", async (context) => {
    await hostileLoad();
    for (const run of runs) {
      let handled = 0;
      let lost = 0;
      for (const call of run.calls) {
        const invocationId = call.answer?.body?.error?.details?.invocation_id;
        const record = invocationId
          ? await send<{ error?: string }>("GET", `/invocations/${invocationId}`)
          : undefined;
        if (call.answer && record?.status !== 200) lost += 1;
        if (
          answeredAsSpecified(call.answer, run.peer) &&
          run.peer.invoke.recordError.test(record?.body?.error ?? "")
        )
          handled += 1;
      }
      // A followed redirect carries the caller's input and the agent's token to the canary.
      const followed = canary.paths.filter((path) => path.startsWith(`/${run.peer.slug}/agent`)).length;
      tally(context, {
        fault: `hostile agent: ${run.peer.name}`,
        tried: run.calls.length,
        handled,
        lost,
        leaked: followed + occurrences(steward?.output() ?? "", run.agentToken),
      });
    }
  });

  it("ends every delivery to a hostile platform dead within bounds, its token never quoted", async (context) => {
    await hostileLoad();
    for (const run of runs) {
      const invocations = run.calls.flatMap((call) => call.answer?.body?.error?.details?.invocation_id ?? []);
      const handled = run.deliveries.filter(
        (delivery) =>
          delivery.status === "dead" &&
          delivery.attempt_log?.length === run.peer.deliveryAttempts &&
          delivery.attempt_log.every((attempt) => attempt.duration_ms <= DELIVERY_TIMEOUT_MS + SLACK_MS),
      ).length;
      const delivered = new Set(run.deliveries.map((delivery) => delivery.invocation_id));
      const followed = canary.paths.filter((path) => path.startsWith(`/${run.peer.slug}/services`)).length;
      tally(context, {
        fault: `hostile platform: ${run.peer.name}`,
        tried: invocations.length,
        handled,
        lost: invocations.filter((id) => !delivered.has(id)).length,
        leaked:
          followed +
          occurrences(JSON.stringify(run.deliveries), run.platformToken) +
          occurrences(steward?.output() ?? "", run.platformToken),
      });
    }
  });

  it("lets go of every hostile connection, keeps its memory bounded and never reaches the canary", async () => {
    const { baselineMb, peakMb } = await hostileLoad();
    for (const run of runs) expect(run.server.openResponses(), run.peer.name).toBe(0);
    expect(
      peakMb - baselineMb,
      `peak RSS ${peakMb.toFixed(0)} MB over ${baselineMb.toFixed(0)} MB`,
    ).toBeLessThan(MAX_RSS_GROWTH_MB);
    expect(canary.connections()).toBe(0);
  });
});

describe("the SSRF corpus, wherever a URL enters Steward", () => {
  /** Resolves to 127.0.0.1 through the test DNS server. */
  const LOOPBACK_NAME = "loopback.chaos.test";
  /** Has no address: accepted at registration (checked at every connect), so it makes valid bases. */
  const NOWHERE = "http://nowhere.chaos.test";
  const PLANTED_TOKEN = `planted-${randomBytes(16).toString("hex")}`;
  const { adminKey, headers, env } = stewardEnvironment({
    // "" counts as unset: no private network is allowed, so loopback is refused.
    STEWARD_ALLOW_PRIVATE_NETWORKS: "",
    // A destination let through by mistake fails the test quickly instead of stalling it.
    STEWARD_INVOKE_TIMEOUT_MS: String(INVOKE_TIMEOUT_MS),
    STEWARD_DELIVERY_TIMEOUT_MS: String(DELIVERY_TIMEOUT_MS),
    // Jobs run in process, and a failed one is not tried again.
    NATS_URL: "",
    STEWARD_JOBS_MAX_DELIVER: "1",
  });
  let dns: TestDnsServer;
  let canary: CanaryServer;
  let steward: Awaited<ReturnType<typeof startStewardServer>> | undefined;
  let send: Send;
  let planted: Planted;

  beforeAll(async () => {
    dns = await startDnsServer({ [LOOPBACK_NAME]: ["127.0.0.1"] });
    canary = await startCanaryServer();
    const resolvingWithTestDns = { ...env, STEWARD_DNS_SERVERS: dns.address };
    planted = await plantWithPermissiveReplica(resolvingWithTestDns, [
      ...connectableCorpus(canary.port),
      loopbackNameUrl(),
    ]);
    steward = await startStewardServer(resolvingWithTestDns);
    send = apiOf(steward.url, headers);
  });

  afterAll(async () => {
    await steward?.steward.kill("SIGKILL");
    await canary?.close();
    await dns?.close();
  });

  function loopbackNameUrl(): string {
    return `http://${LOOPBACK_NAME}:${canary.port}/`;
  }

  /** Every corpus URL (the connectable ones on the canary's port) and the name that resolves to loopback. */
  function corpusOnCanary(): string[] {
    const unconnectable = SSRF_CORPUS.filter((url) => !url.startsWith("http://"));
    return [...connectableCorpus(canary.port), ...unconnectable, loopbackNameUrl()];
  }

  interface Planted {
    /** Agents whose URL and Slack webhook are a corpus URL, in the admin's organization. */
    agents: string[];
    /** Webhook subscriptions at the corpus URLs, in an organization of their own… */
    subscriptions: number;
    /** …whose one agent sets them off, so a single call fans out to them. */
    notifier: { id: string; key: string };
  }

  /**
   * What an operator who once allowed private networks, then withdrew the allowance, is
   * left with: agents and webhook subscriptions at each URL, registered by a replica that
   * let them through. It is closed before the strict process starts, so only the strict
   * one ever connects anywhere.
   */
  async function plantWithPermissiveReplica(
    strictEnv: Record<string, string>,
    urls: string[],
  ): Promise<Planted> {
    const replica = await startTestSteward("postgres", {
      ...strictEnv,
      STEWARD_ALLOW_PRIVATE_NETWORKS: "true",
    });
    const post = (path: string, payload: Record<string, unknown>, key = adminKey) =>
      replica.request({ method: "POST", url: `/api/v1${path}`, key, payload });
    try {
      const agents: string[] = [];
      for (const [index, url] of urls.entries()) {
        const agent = await post("/external-agents", {
          name: `planted-${index}`,
          platform: "slack",
          webhook_url: url,
          auth_type: "bearer_token",
          auth_config: { token: PLANTED_TOKEN },
          platform_config: { webhook_url: url, channel: "#chaos" },
        });
        // The always-unroutable addresses (0.0.0.0, multicast) are refused even here.
        if (agent.statusCode === 201) agents.push(agent.json().id as string);
      }
      const organization = await post("/orgs", { name: "ssrf-webhooks" });
      const key = (
        await post("/api-keys", { name: "webhooks", role: "admin", organization_id: organization.json().id })
      ).json().key as string;
      let subscriptions = 0;
      for (const url of urls) {
        const subscription = await post("/webhooks", { url, events: [INVOCATION_COMPLETED] }, key);
        if (subscription.statusCode === 201) subscriptions += 1;
      }
      const notifier = await post(
        "/external-agents",
        { name: "notifier", platform: "custom_http", webhook_url: loopbackNameUrl() },
        key,
      );
      return { agents, subscriptions, notifier: { id: notifier.json().id as string, key } };
    } finally {
      await replica.close();
    }
  }

  async function created(path: string, body: unknown): Promise<string> {
    const answer = await send<{ id: string }>("POST", path, body);
    if (answer.status !== 201 || !answer.body) throw new Error(`POST ${path} failed: ${answer.text}`);
    return answer.body.id;
  }

  /** Invokes an agent whose URL the guard must refuse: 502, and a record saying so. */
  async function refusedCall(sendAs: Send, agentId: string): Promise<Outcome> {
    const call = await sendAs<ErrorEnvelope>("POST", `/external-agents/${agentId}/invoke`, { input: "ssrf" });
    const invocationId = call.body?.error?.details?.invocation_id;
    const record = invocationId
      ? await sendAs<{ error?: string }>("GET", `/invocations/${invocationId}`)
      : undefined;
    const refused = call.status === 502 && REFUSED_BY_GUARD.test(record?.body?.error ?? "");
    return { tried: 1, handled: refused ? 1 : 0, lost: record?.status === 200 ? 0 : 1 };
  }

  /**
   * Waits for `expected` deliveries of these agents to `target` to end: each must be dead
   * after one attempt, refused by the guard (a refusal is not retried).
   */
  async function refusedDeliveries(
    sendAs: Send,
    target: "platform" | "webhook" | "callback",
    agentIds: string[],
    expected: number,
  ): Promise<Outcome> {
    let deliveries: Delivery[] = [];
    await until(async () => {
      const all = (await Promise.all(agentIds.map((id) => deliveriesOf(sendAs, id)))).flat();
      deliveries = all.filter((delivery) => delivery.target === target);
      return (
        deliveries.length >= expected && deliveries.every((delivery) => FINAL_DELIVERY.has(delivery.status))
      );
    }, 20_000);
    const refused = deliveries.filter(
      (delivery) =>
        delivery.status === "dead" &&
        delivery.attempts === 1 &&
        REFUSED_BY_GUARD.test(delivery.last_error ?? ""),
    );
    return { tried: expected, handled: refused.length, lost: Math.max(0, expected - deliveries.length) };
  }

  /** Submits a job whose one http node fetches `url`: refused at submission, or failed by the guard. */
  async function refusedJob(url: string): Promise<Outcome> {
    const submitted = await send<{ id: string } & ErrorEnvelope>("POST", "/jobs", {
      agent_definition: oneNodeGraph("ssrf", { id: "fetch", type: "http", url }),
      input_payload: {},
    });
    const fields = refusedFields(submitted);
    if (fields)
      return { tried: 1, handled: fields.join() === "agent_definition.nodes[0].url" ? 1 : 0, lost: 0 };
    const id = submitted.body?.id;
    if (submitted.status !== 202 || !id) return { tried: 1, handled: 0, lost: 0 };
    let job: { status?: string; error?: { message: string } | null } | undefined;
    await until(async () => {
      job = (await send<typeof job>("GET", `/jobs/${id}`)).body;
      return job?.status === "failed" || job?.status === "completed";
    }, 20_000);
    const refused = job?.status === "failed" && REFUSED_BY_GUARD.test(job.error?.message ?? "");
    return { tried: 1, handled: refused ? 1 : 0, lost: job?.status ? 0 : 1 };
  }

  /**
   * Holds a call for approval with each URL as its callback_url, then rejects it: the
   * answer is POSTed to the callback through the outbox, and the guard refuses it there.
   */
  async function refusedCallbacks(urls: string[]): Promise<Outcome> {
    const agentId = await created("/external-agents", {
      name: "ssrf-held",
      platform: "custom_http",
      webhook_url: `${NOWHERE}/agent`,
      approval_config: {
        triggers: { payload_patterns: ["hold"] },
        workflow: { approver_roles: ["admin"], allow_self_approval: true },
      },
    });
    let refusedAtInvoke = 0;
    let rejected = 0;
    for (const url of urls) {
      const answer = await send<{ approval_id: string } & ErrorEnvelope>(
        "POST",
        `/external-agents/${agentId}/invoke`,
        { input: "hold this", callback_url: url },
      );
      if (refusedFields(answer)?.join() === "callback_url") refusedAtInvoke += 1;
      else if (answer.status === 202 && answer.body) {
        const decided = await send("POST", `/approvals/${answer.body.approval_id}/reject`, {
          reason: "chaos",
        });
        if (decided.status === 200) rejected += 1;
      }
    }
    const callbacks = await refusedDeliveries(send, "callback", [agentId], rejected);
    return {
      tried: urls.length,
      handled: refusedAtInvoke + callbacks.handled,
      lost: callbacks.lost,
    };
  }

  it("refuses every corpus URL at registration and update with a 400 naming the field", async (context) => {
    const agentId = await created("/external-agents", {
      name: "ssrf-base",
      platform: "slack",
      webhook_url: `${NOWHERE}/agent`,
      platform_config: { webhook_url: `${NOWHERE}/slack`, channel: "#chaos" },
    });
    // Inactive: it takes no part in the connect-time test's deliveries.
    const subscriptionId = await created("/webhooks", {
      url: `${NOWHERE}/hook`,
      events: [INVOCATION_COMPLETED],
      active: false,
    });
    const uniqueName = () => `ssrf-${randomBytes(4).toString("hex")}`;
    const entries: Array<{ field: string; send(url: string): Promise<Answer<ErrorEnvelope>> }> = [
      {
        field: "webhook_url",
        send: (url) =>
          send("POST", "/external-agents", { name: uniqueName(), platform: "custom_http", webhook_url: url }),
      },
      {
        field: "webhook_url",
        send: (url) => send("PATCH", `/external-agents/${agentId}`, { webhook_url: url }),
      },
      {
        field: "platform_config.webhook_url",
        send: (url) =>
          send("POST", "/external-agents", {
            name: uniqueName(),
            platform: "slack",
            webhook_url: `${NOWHERE}/agent`,
            platform_config: { webhook_url: url, channel: "#chaos" },
          }),
      },
      {
        field: "platform_config.webhook_url",
        send: (url) =>
          send("PATCH", `/external-agents/${agentId}`, {
            platform_config: { webhook_url: url, channel: "#chaos" },
          }),
      },
      {
        field: "auth_config.token_url",
        send: (url) =>
          send("POST", "/external-agents", {
            name: uniqueName(),
            platform: "custom_http",
            webhook_url: `${NOWHERE}/agent`,
            auth_type: "oauth2",
            auth_config: { client_id: "chaos", client_secret: "chaos-secret", token_url: url },
          }),
      },
      { field: "url", send: (url) => send("POST", "/webhooks", { url, events: [INVOCATION_COMPLETED] }) },
      { field: "url", send: (url) => send("PATCH", `/webhooks/${subscriptionId}`, { url }) },
    ];
    const urls = [...SSRF_CORPUS, `http://${LOOPBACK_NAME}/`];
    const canaryBefore = canary.connections();
    let tried = 0;
    let handled = 0;
    for (const entry of entries) {
      for (const url of urls) {
        tried += 1;
        const answer = await entry.send(url).catch(() => undefined);
        if (answer && refusedFields(answer)?.join() === entry.field) handled += 1;
      }
    }
    // The refused updates changed nothing.
    const agent = await send<{ webhook_url: string }>("GET", `/external-agents/${agentId}`);
    expect(agent.body?.webhook_url).toBe(`${NOWHERE}/agent`);
    expect((await send<{ url: string }>("GET", `/webhooks/${subscriptionId}`)).body?.url).toBe(
      `${NOWHERE}/hook`,
    );
    tally(context, {
      fault: "SSRF at registration",
      tried,
      handled,
      // A refused URL leaves nothing behind to lose; an unanswered request is not handled.
      lost: null,
      leaked: canary.connections() - canaryBefore,
    });
  });

  it("refuses every corpus URL at connect time: agents, platforms, webhooks, job http nodes, callbacks", async (context) => {
    expect(planted.agents.length).toBeGreaterThan(0);
    const asNotifierOrganization = apiOf(steward?.url ?? "", {
      ...headers,
      authorization: `Bearer ${planted.notifier.key}`,
    });
    const outcomes = await Promise.all([
      ...planted.agents.map((id) => refusedCall(send, id)),
      refusedDeliveries(send, "platform", planted.agents, planted.agents.length),
      refusedCall(asNotifierOrganization, planted.notifier.id),
      refusedDeliveries(asNotifierOrganization, "webhook", [planted.notifier.id], planted.subscriptions),
      ...corpusOnCanary().map(refusedJob),
      refusedCallbacks(corpusOnCanary()),
    ]);
    const sum = (key: keyof Outcome) => outcomes.reduce((total, outcome) => total + outcome[key], 0);
    tally(context, {
      fault: "SSRF at connect time",
      tried: sum("tried"),
      handled: sum("handled"),
      lost: sum("lost"),
      // A connection to the canary would carry a caller's input, and the planted agents' token, where it must never go.
      leaked: canary.connections() + occurrences(steward?.steward.output() ?? "", PLANTED_TOKEN),
    });
  });
});

/**
 * log-sentinel publishes findings for log lines on NATS that match a pattern. It documents Steward's agent
 * protocol by example: heartbeats, metrics, logs and pushed config, over NATS if NATS_URL is set, else HTTP.
 */
import { connect, credsAuthenticator, type Msg, type NatsConnection } from "@nats-io/transport-node";

type Config = { pattern: string; severity: "info" | "warn" | "error"; report_every_s: number };
type ControlMessage = { type: "config"; version: number; config: Partial<Config> } | { type: "stop" };
type Token = { token: string; expires_at: string };

// Steward's process manager passes everything in the environment, and nothing else.
const env = process.env;
const agentId = env.STEWARD_AGENT_ID ?? "";
if (!agentId) throw new Error("STEWARD_AGENT_ID is not set: Steward starts this agent");
let token = env.STEWARD_AGENT_TOKEN ?? "";
const heartbeatMs = Number(env.STEWARD_HEARTBEAT_INTERVAL_S ?? 30) * 1000;
const topics = (env.STEWARD_SUBSCRIBED_TOPICS ?? "").match(/[^\s,]+/g) ?? []; // comma-separated
const findingsTopic = env.STEWARD_FINDINGS_TOPIC ?? "findings.logs";

const defaults: Config = { pattern: "ERROR|FATAL", severity: "warn", report_every_s: 30 };
let config: Config = { ...defaults, ...(JSON.parse(env.STEWARD_AGENT_CONFIG ?? "{}") as Partial<Config>) };
let matcher = new RegExp(config.pattern);
// Config messages at or below the version given at start are old news.
let configVersion = Number(env.STEWARD_AGENT_CONFIG_VERSION ?? 0);
// Counted since the last metrics report, so each report covers one interval, not a running total.
let counts = { events: 0, timeMs: 0, errors: 0, matches: 0 };
let cpuSample = { usage: process.cpuUsage(), at: performance.now() };
const stopping = new AbortController(); // aborted at shutdown, which also ends the HTTP long poll
const isoNow = () => new Date().toISOString();

const nats = env.NATS_URL
  ? await connect({
      servers: env.NATS_URL,
      name: agentId,
      ...(env.NATS_CREDS && { authenticator: credsAuthenticator(new TextEncoder().encode(env.NATS_CREDS)) }),
    })
  : undefined;

/** One call to Steward's API about this agent, with the current bearer token. */
async function api(path: string, init: { method?: string; body?: object; signal?: AbortSignal } = {}) {
  // A JSON content type with an empty body is a 400, so the header goes only with a body.
  const json = init.body && { "content-type": "application/json" };
  const response = await fetch(`${env.STEWARD_URL}/api/v1/agents/${agentId}${path}`, {
    method: init.method ?? "GET",
    headers: { authorization: `Bearer ${token}`, ...json },
    body: init.body && JSON.stringify(init.body),
    signal: init.signal ?? AbortSignal.timeout(10_000),
  });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response;
}

/** Reports to Steward: the same JSON body on subject `agents.{id}.{kind}` or POSTed to `/{kind}`. */
async function report(kind: "heartbeat" | "metrics" | "logs", body: object): Promise<void> {
  try {
    if (nats) nats.publish(`agents.${agentId}.${kind}`, JSON.stringify(body));
    else await api(`/${kind}`, { method: "POST", body });
  } catch (error) {
    failed(`report ${kind}`, error);
  }
}

/** The agent's own troubles go to stderr, which Steward's process manager keeps with its output. */
function failed(what: string, error: unknown): void {
  counts.errors += 1;
  console.error(`log-sentinel: ${what} failed: ${error instanceof Error ? error.message : String(error)}`);
}
function log(level: "info" | "warn" | "error", message: string, context: object = {}): Promise<void> {
  return report("logs", { entries: [{ level, message, context, timestamp: isoNow() }] });
}
function heartbeat(): Promise<void> {
  const uptime = Math.round(process.uptime());
  return report("heartbeat", { agent_id: agentId, status: "running", timestamp: isoNow(), uptime });
}

function metrics(): Promise<void> {
  const cpu = process.cpuUsage(cpuSample.usage);
  const now = performance.now();
  // CPU time over wall time since the last report: percent of one core.
  const cpuPercent = ((cpu.user + cpu.system) / 1000 / Math.max(1, now - cpuSample.at)) * 100;
  const body = {
    timestamp: isoNow(),
    events_processed: counts.events,
    processing_time_ms: Math.round(counts.timeMs * 100) / 100,
    errors: counts.errors,
    cpu: Math.round(cpuPercent * 10) / 10,
    memory: process.memoryUsage.rss(),
  };
  counts = { events: 0, timeMs: 0, errors: 0, matches: counts.matches };
  cpuSample = { usage: process.cpuUsage(), at: now };
  return report("metrics", body);
}

let summaryTimer: NodeJS.Timeout | undefined;
/** Every report_every_s, one log line sums up the matches since the last one. */
function scheduleSummary(): void {
  clearInterval(summaryTimer);
  summaryTimer = setInterval(() => {
    if (counts.matches > 0) void log("info", `${counts.matches} matching lines in ${config.report_every_s}s`);
    counts.matches = 0;
  }, config.report_every_s * 1000);
}

/** Handles a control message, from NATS or from the HTTP long poll alike. */
function control(message: ControlMessage): void {
  if (message.type === "stop") void shutdown("stop requested");
  if (message.type !== "config" || message.version <= configVersion) return;
  const { version } = message;
  try {
    const next = { ...defaults, ...message.config };
    matcher = new RegExp(next.pattern); // throws on a bad pattern, which keeps the old config
    [config, configVersion] = [next, version];
    scheduleSummary();
    void log("info", `applied config version ${version}`, { version });
  } catch (error) {
    failed(`config version ${version}`, error);
    void log("error", `rejected config version ${version}`, { version });
  }
}

/** Checks one log line; a match becomes a finding on the findings topic. */
function inspect(message: Msg): void {
  const [started, line, subject] = [performance.now(), message.string(), message.subject];
  counts.events += 1;
  if (matcher.test(line)) {
    counts.matches += 1;
    const finding = { agent_id: agentId, severity: config.severity, line, subject, timestamp: isoNow() };
    nats?.publish(findingsTopic, JSON.stringify(finding));
  }
  counts.timeMs += performance.now() - started;
}

/** NATS mode: handles each message on a subject; one bad message must not end the subscription. */
async function consume(nc: NatsConnection, subject: string, handle: (message: Msg) => void): Promise<void> {
  for await (const message of nc.subscribe(subject)) {
    try {
      handle(message);
    } catch (error) {
      failed(`message on ${message.subject}`, error);
    }
  }
}

/** HTTP mode: waits for a newer config; Steward answers 204 when none came within wait_s. */
async function pollControl(): Promise<void> {
  while (!stopping.signal.aborted) {
    try {
      const signal = AbortSignal.any([stopping.signal, AbortSignal.timeout(40_000)]);
      const response = await api(`/control?after=${configVersion}&wait_s=25`, { signal });
      if (response.status === 200) control((await response.json()) as ControlMessage);
    } catch (error) {
      if (stopping.signal.aborted) return;
      failed("control poll", error);
      await new Promise((resolve) => setTimeout(resolve, 5000));
    }
  }
}

/** HTTP mode: swaps the token for a fresh one a minute (or half its lifetime) before it expires. */
function refreshTokenBefore(expiresAt: string | undefined): void {
  if (!expiresAt) return;
  const left = Date.parse(expiresAt) - Date.now();
  setTimeout(refreshToken, Math.max(0, left - Math.min(60_000, left / 2)));
}
async function refreshToken(): Promise<void> {
  try {
    const fresh = (await (await api("/token", { method: "POST" })).json()) as Token;
    token = fresh.token;
    refreshTokenBefore(fresh.expires_at);
  } catch (error) {
    failed("token refresh", error);
    setTimeout(refreshToken, 5000);
  }
}

/** Last words, then exit 0: a SIGTERM from Steward and a "stop" control message end the same way. */
async function shutdown(reason: string): Promise<void> {
  if (stopping.signal.aborted) return;
  stopping.abort();
  await log("info", "stopping", { reason });
  await nats?.drain(); // delivers what is still buffered, the log above included
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));

if (nats) {
  // The subscriptions go out before the first heartbeat on one connection: "alive" means "listening".
  void consume(nats, `agents.${agentId}.control`, (message) => control(message.json<ControlMessage>()));
  for (const topic of topics) void consume(nats, topic, inspect);
  // If the client gives up reconnecting, exit non-zero so that Steward restarts the agent.
  void nats.closed().then(() => stopping.signal.aborted || process.exit(1));
} else {
  void pollControl();
  refreshTokenBefore(env.STEWARD_AGENT_TOKEN_EXPIRES_AT);
}
scheduleSummary();
await heartbeat().then(metrics);
setInterval(() => void heartbeat().then(metrics), heartbeatMs);

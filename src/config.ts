/**
 * The only module that reads the environment. Everything else receives the typed,
 * validated `Config` built here, so a bad value stops start-up with a message that
 * names the variable instead of failing somewhere deep inside a request.
 */

export type StewardEnv = "development" | "production";

export type DatabaseConfig =
  | { kind: "embedded"; dataDir: string }
  | {
      kind: "postgres";
      connectionString: string;
      schema: string;
      poolSize: number;
      /** Frequent statements run as named prepared ones; off for poolers that cannot keep them. */
      preparedStatements?: boolean;
    };

export interface JwtConfig {
  secret?: string;
  jwksUrl?: string;
  issuer: string;
  audience: string;
  orgClaim: string;
  rolesClaim: string;
  teamClaim: string;
}

export interface RedisConfig {
  url: string;
  /** Prepended to every key, so several Steward installs (or test runs) can share one server. */
  keyPrefix: string;
}

/** Which outbound destinations the SSRF guard lets through besides public addresses. */
export type PrivateNetworkAccess = { kind: "none" } | { kind: "all" } | { kind: "cidrs"; cidrs: string[] };

export interface Config {
  env: StewardEnv;
  host: string;
  port: number;
  /**
   * Where `steward worker` answers /health, /ready and /metrics: apart from PORT, so both
   * run on one host; 0 takes any free port.
   */
  workerPort: number;
  dataDir: string;
  logLevel: string;
  bodyLimitBytes: number;
  database: DatabaseConfig;
  encryptionKey?: string;
  previousEncryptionKeys: string[];
  bootstrapAdminKey?: string;
  jwt?: JwtConfig;
  /** Unset: rate-limit counters live in memory (one process). */
  redis?: RedisConfig;
  rateLimitFailMode: "open" | "closed";
  /** How long a rate-limit decision waits for Redis before the fail mode applies. */
  rateLimitTimeoutMs: number;
  privateNetworks: PrivateNetworkAccess;
  /** DNS servers for resolving agent hosts ("host" or "host:port"); unset: the system resolver. */
  dnsServers: string[];
  /** Default whole-request timeout of a call to an agent. */
  invokeTimeoutMs: number;
  /** A call still running this long after it began is closed as abandoned (its process died). */
  abandonedCallAfterMs: number;
  /** Largest agent response body Steward reads. */
  maxResponseBytes: number;
  delivery: DeliveryConfig;
  /** Unset: approval e-mails are not sent. */
  smtp?: SmtpConfig;
  /** Unset: managed agents talk to Steward over HTTP only. */
  nats?: NatsConfig;
  lifecycle: LifecycleConfig;
  executor: ExecutorConfig;
  shutdown: ShutdownConfig;
}

/** What SIGTERM does: readiness false at once, then stop accepting, then finish what is under way. */
export interface ShutdownConfig {
  /** Between readiness going false and the listener closing, so load balancers stop sending first. */
  delayMs: number;
  /** In-flight requests and jobs get this long; what is unfinished then is cut (jobs are redelivered). */
  timeoutMs: number;
}

export interface NatsConfig {
  url: string;
  /** An account signing seed (SA…): set when the NATS server uses decentralized auth. */
  accountSeed?: string;
  /** Lifetime of the NATS users issued to managed agents. */
  credentialsTtlS: number;
}

export interface LifecycleConfig {
  agentsDir: string;
  /** The organization that scans at start and by the watcher record agents in (id or name). */
  agentsOrg: string;
  watchAgentsDir: boolean;
  /** For agents that do not declare their own interval. */
  heartbeatIntervalS: number;
  heartbeatUnhealthyAfter: number;
  heartbeatFailedAfter: number;
  heartbeatSweepMs: number;
  agentTokenTtlS: number;
  discoveryTokenTtlS: number;
  telemetryRetentionDays: number;
  restartDelayMs: number;
  maxRestarts: number;
  stopGraceMs: number;
  /** Every STEWARD_AGENT_<NAME>_<KEY> variable: the environment layer of agents' config. */
  agentEnvironment: Record<string, string>;
  /** PATH handed to agent processes (nothing else of Steward's environment is). */
  agentPath: string;
  /**
   * The NATS queue group Steward's replicas share agents' reports in. Installations sharing
   * a NATS server each need their own, or each gets only part of its agents' reports.
   */
  natsQueueGroup: string;
}

export interface ExecutorConfig {
  /** JetStream names; the defaults are the contract's, tests give each run its own. */
  stream: string;
  subjectPrefix: string;
  consumer: string;
  ackWaitMs: number;
  maxDeliver: number;
  /** Jobs one process runs at once. */
  concurrency: number;
  /** Whether `serve` consumes jobs from JetStream too (off: only `steward worker` processes do). */
  consume: boolean;
  /** Stream events kept per job for late readers. */
  maxStoredEvents: number;
  llm: {
    baseUrl: string;
    allowedBaseUrls: string[];
    /** Provider keys by variable name; only ever sent to the allowed base URLs. */
    keys: Record<string, string>;
    timeoutMs: number;
  };
}

export interface SmtpConfig {
  url: string;
  from: string;
}

export interface DeliveryConfig {
  /** Base URL of Steward as people reach it, for links in platform messages. */
  publicUrl: string;
  /** Delays between attempts; attempts = delays + 1. */
  retryDelaysMs: number[];
  /** An endpoint failing without a success for this long is paused. */
  pauseAfterMs: number;
  timeoutMs: number;
  telegramApiUrl: string;
  notionApiUrl: string;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    reason: string,
  ) {
    super(`${variable} ${reason}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** Reads and validates the environment; throws `ConfigError` naming the first bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === "" ? undefined : value;
  };
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || value < min || value > max) {
      throw new ConfigError(name, `must be an integer between ${min} and ${max} (got "${raw}")`);
    }
    return value;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const raw = read(name) ?? fallback;
    if (!allowed.includes(raw as T)) {
      throw new ConfigError(name, `must be one of ${allowed.join(", ")} (got "${raw}")`);
    }
    return raw as T;
  };

  const stewardEnv = oneOf("STEWARD_ENV", ["development", "production"] as const, "development");
  const dataDir = read("STEWARD_DATA_DIR") ?? "./.steward";
  const encryptionKey = read("STEWARD_ENCRYPTION_KEY");
  if (stewardEnv === "production" && !encryptionKey) {
    throw new ConfigError("STEWARD_ENCRYPTION_KEY", "is required when STEWARD_ENV=production");
  }
  const bootstrapAdminKey = read("STEWARD_BOOTSTRAP_ADMIN_KEY");
  if (bootstrapAdminKey !== undefined && bootstrapAdminKey.length < 16) {
    throw new ConfigError("STEWARD_BOOTSTRAP_ADMIN_KEY", "must be at least 16 characters long");
  }

  return {
    env: stewardEnv,
    host: read("HOST") ?? "0.0.0.0",
    port: integer("PORT", 8080, 1, 65535),
    workerPort: integer("STEWARD_WORKER_PORT", 8081, 0, 65535),
    dataDir,
    logLevel: oneOf("LOG_LEVEL", LOG_LEVELS, "info"),
    bodyLimitBytes: integer("STEWARD_BODY_LIMIT", 1024 * 1024, 1024, 100 * 1024 * 1024),
    database: databaseConfig(read, integer, dataDir),
    encryptionKey,
    previousEncryptionKeys: list(read("STEWARD_ENCRYPTION_PREVIOUS_KEYS")),
    bootstrapAdminKey,
    shutdown: {
      delayMs: integer("STEWARD_SHUTDOWN_DELAY_SECONDS", 0, 0, 300) * 1000,
      timeoutMs: integer("STEWARD_SHUTDOWN_TIMEOUT_SECONDS", 25, 1, 3600) * 1000,
    },
    jwt: jwtConfig(read),
    redis: redisConfig(read, integer),
    rateLimitFailMode: oneOf("STEWARD_RATE_LIMIT_FAIL_MODE", ["open", "closed"] as const, "open"),
    rateLimitTimeoutMs: integer("STEWARD_RATE_LIMIT_TIMEOUT_MS", 50, 5, 10_000),
    privateNetworks: privateNetworks(read("STEWARD_ALLOW_PRIVATE_NETWORKS")),
    dnsServers: list(read("STEWARD_DNS_SERVERS")),
    invokeTimeoutMs: integer("STEWARD_INVOKE_TIMEOUT_MS", 30_000, 100, 600_000),
    // Past the longest agent timeout (600 s), with room to spare.
    abandonedCallAfterMs: integer("STEWARD_ABANDONED_CALL_AFTER_SECONDS", 900, 1, 86_400) * 1000,
    maxResponseBytes: integer("STEWARD_MAX_RESPONSE_BYTES", 1024 * 1024, 1024, 100 * 1024 * 1024),
    delivery: {
      publicUrl: (
        httpUrl(read, "STEWARD_PUBLIC_URL") ?? `http://localhost:${integer("PORT", 8080, 1, 65535)}`
      ).replace(/\/+$/, ""),
      retryDelaysMs: durations(read, "STEWARD_DELIVERY_RETRY_DELAYS", "2s,10s"),
      pauseAfterMs: durations(read, "STEWARD_DELIVERY_PAUSE_AFTER", "1h")[0] as number,
      timeoutMs: integer("STEWARD_DELIVERY_TIMEOUT_MS", 10_000, 100, 120_000),
      telegramApiUrl: httpUrl(read, "STEWARD_TELEGRAM_API_URL") ?? "https://api.telegram.org",
      notionApiUrl: httpUrl(read, "STEWARD_NOTION_API_URL") ?? "https://api.notion.com",
    },
    smtp: smtpConfig(read),
    nats: natsConfig(read, integer),
    executor: {
      stream: read("STEWARD_JOBS_STREAM") ?? "AGENT_EXECUTION",
      subjectPrefix: read("STEWARD_JOBS_SUBJECT_PREFIX") ?? "agent",
      consumer: read("STEWARD_JOBS_CONSUMER") ?? "agent-executor-workers",
      ackWaitMs: integer("STEWARD_JOBS_ACK_WAIT_S", 300, 1, 86_400) * 1000,
      maxDeliver: integer("STEWARD_JOBS_MAX_DELIVER", 3, 1, 100),
      concurrency: integer("STEWARD_JOBS_CONCURRENCY", 4, 1, 256),
      consume: oneOf("STEWARD_JOBS_CONSUME", ["on", "off"] as const, "on") === "on",
      maxStoredEvents: integer("STEWARD_JOB_EVENTS_MAX", 10_000, 10, 1_000_000),
      llm: {
        baseUrl: (httpUrl(read, "OPENAI_BASE_URL") ?? "https://api.openai.com/v1").replace(/\/+$/, ""),
        allowedBaseUrls: list(read("STEWARD_LLM_BASE_URLS")).map((url) => url.replace(/\/+$/, "")),
        keys: Object.fromEntries(
          ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"].flatMap((name) => {
            const value = read(name);
            return value ? [[name, value]] : [];
          }),
        ),
        timeoutMs: integer("STEWARD_LLM_TIMEOUT_MS", 120_000, 1000, 3_600_000),
      },
    },
    lifecycle: {
      agentsDir: read("STEWARD_AGENTS_DIR") ?? "./agents",
      agentsOrg: read("STEWARD_AGENTS_ORG") ?? "default",
      watchAgentsDir: oneOf("STEWARD_AGENTS_WATCH", ["true", "false"] as const, "true") === "true",
      heartbeatIntervalS: integer("STEWARD_HEARTBEAT_INTERVAL_S", 30, 1, 3600),
      heartbeatUnhealthyAfter: integer("STEWARD_HEARTBEAT_UNHEALTHY_AFTER", 3, 1, 100),
      heartbeatFailedAfter: integer("STEWARD_HEARTBEAT_FAILED_AFTER", 6, 1, 1000),
      heartbeatSweepMs: integer("STEWARD_HEARTBEAT_SWEEP_MS", 5_000, 50, 600_000),
      agentTokenTtlS: integer("STEWARD_AGENTS_TOKEN_TTL_S", 900, 60, 86_400),
      discoveryTokenTtlS: integer("STEWARD_DISCOVERY_TOKEN_TTL_S", 900, 60, 86_400),
      telemetryRetentionDays: integer("STEWARD_TELEMETRY_RETENTION_DAYS", 7, 1, 3650),
      restartDelayMs: integer("STEWARD_AGENTS_RESTART_DELAY_MS", 1_000, 10, 600_000),
      maxRestarts: integer("STEWARD_AGENTS_MAX_RESTARTS", 5, 0, 1000),
      stopGraceMs: integer("STEWARD_AGENTS_STOP_GRACE_MS", 10_000, 100, 600_000),
      agentEnvironment: agentEnvironment(env),
      agentPath: read("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
      natsQueueGroup: read("STEWARD_AGENTS_NATS_QUEUE") ?? "steward-lifecycle",
    },
  };
}

/** Where the `steward agents` commands reach a running Steward, and with which key. */
export interface ClientConfig {
  url: string;
  apiKey: string;
}

/** The settings of CLI commands that talk to a running server over its API. */
export function loadClientConfig(env: Env = process.env): ClientConfig {
  const read = (name: string): string | undefined => env[name]?.trim() || undefined;
  const apiKey = read("STEWARD_API_KEY");
  if (!apiKey)
    throw new ConfigError("STEWARD_API_KEY", "is required: the key the command calls the API with");
  const url = httpUrl(read, "STEWARD_URL") ?? `http://127.0.0.1:${read("PORT") ?? "8080"}`;
  return { url: url.replace(/\/+$/, ""), apiKey };
}

/** STEWARD_AGENT_<NAME>_<KEY> variables (Steward's own STEWARD_AGENTS_* settings do not start so). */
function agentEnvironment(env: Env): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter(
      (entry): entry is [string, string] => entry[0].startsWith("STEWARD_AGENT_") && entry[1] !== undefined,
    ),
  );
}

function natsConfig(
  read: (name: string) => string | undefined,
  integer: (name: string, fallback: number, min: number, max: number) => number,
): NatsConfig | undefined {
  const url = read("NATS_URL");
  const accountSeed = read("STEWARD_NATS_ACCOUNT_SEED");
  if (!url) {
    if (accountSeed) throw new ConfigError("STEWARD_NATS_ACCOUNT_SEED", "needs NATS_URL");
    return undefined;
  }
  if (!/^(nats|tls|wss?):\/\/[^\s]+$/.test(url))
    throw new ConfigError("NATS_URL", "must be a nats:// or tls:// URL");
  return {
    url,
    accountSeed,
    credentialsTtlS: integer("STEWARD_NATS_CREDENTIALS_TTL_S", 86_400, 60, 31_536_000),
  };
}

function smtpConfig(read: (name: string) => string | undefined): SmtpConfig | undefined {
  const url = read("STEWARD_SMTP_URL");
  if (!url) return undefined;
  if (!/^smtps?:\/\/[^\s]+$/.test(url))
    throw new ConfigError("STEWARD_SMTP_URL", "must be an smtp:// or smtps:// URL");
  return { url, from: read("STEWARD_SMTP_FROM") ?? "Steward <steward@localhost>" };
}

function httpUrl(read: (name: string) => string | undefined, name: string): string | undefined {
  const value = read(name);
  if (value !== undefined && !/^https?:\/\/[^\s]+$/.test(value))
    throw new ConfigError(name, "must be an http(s) URL");
  return value;
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "2s,10s,5m" → [2000, 10000, 300000]. */
function durations(read: (name: string) => string | undefined, name: string, fallback: string): number[] {
  const raw = read(name) ?? fallback;
  return list(raw).map((item) => {
    const match = /^(\d+)(ms|s|m|h|d)$/.exec(item);
    if (!match) throw new ConfigError(name, `must be durations such as 2s,10s,5m,2h (got "${item}")`);
    return Number(match[1]) * (DURATION_UNITS_MS[match[2] as string] as number);
  });
}

function list(raw: string | undefined): string[] {
  return (raw ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
}

const CIDR = /^(\d{1,3}(\.\d{1,3}){3}\/\d{1,2}|[0-9a-fA-F:]+\/\d{1,3})$/;

function privateNetworks(raw: string | undefined): PrivateNetworkAccess {
  if (raw === undefined || raw === "false") return { kind: "none" };
  if (raw === "true") return { kind: "all" };
  const cidrs = list(raw);
  const bad = cidrs.find((cidr) => !CIDR.test(cidr));
  if (bad !== undefined) {
    throw new ConfigError(
      "STEWARD_ALLOW_PRIVATE_NETWORKS",
      `must be true, false or a comma-separated list of CIDRs (got "${bad}")`,
    );
  }
  return { kind: "cidrs", cidrs };
}

function redisConfig(
  read: (name: string) => string | undefined,
  integer: (name: string, fallback: number, min: number, max: number) => number,
): RedisConfig | undefined {
  const keyPrefix = read("STEWARD_REDIS_PREFIX") ?? "steward:";
  const url = read("REDIS_URL");
  if (url) {
    if (!/^rediss?:\/\//.test(url)) throw new ConfigError("REDIS_URL", "must be a redis:// or rediss:// URL");
    return { url, keyPrefix };
  }
  // Dragonfly speaks the Redis protocol; its settings are accepted under their own names.
  const host = read("DRAGONFLY_HOST");
  if (!host) return undefined;
  const port = integer("DRAGONFLY_PORT", 6379, 1, 65535);
  const password = read("DRAGONFLY_PASSWORD");
  const auth = password ? `:${encodeURIComponent(password)}@` : "";
  return { url: `redis://${auth}${host.includes(":") ? `[${host}]` : host}:${port}`, keyPrefix };
}

function databaseConfig(
  read: (name: string) => string | undefined,
  integer: (name: string, fallback: number, min: number, max: number) => number,
  dataDir: string,
): DatabaseConfig {
  const schema = read("STEWARD_DB_SCHEMA") ?? "public";
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new ConfigError("STEWARD_DB_SCHEMA", `must be a lower-case SQL identifier (got "${schema}")`);
  }
  const poolSize = integer("STEWARD_DB_POOL_SIZE", 10, 1, 200);
  const prepared = read("STEWARD_DB_PREPARED_STATEMENTS") ?? "on";
  if (prepared !== "on" && prepared !== "off") {
    throw new ConfigError("STEWARD_DB_PREPARED_STATEMENTS", `must be one of on, off (got "${prepared}")`);
  }
  const preparedStatements = prepared === "on";

  const url = read("DATABASE_URL");
  if (url) {
    if (!/^postgres(ql)?:\/\//.test(url)) {
      throw new ConfigError("DATABASE_URL", "must be a postgres:// or postgresql:// URL");
    }
    return { kind: "postgres", connectionString: url, schema, poolSize, preparedStatements };
  }
  const host = read("POSTGRES_HOST");
  if (host) {
    const port = integer("POSTGRES_PORT", 5432, 1, 65535);
    const user = encodeURIComponent(read("POSTGRES_USER") ?? "postgres");
    const password = read("POSTGRES_PASSWORD");
    const auth = password ? `${user}:${encodeURIComponent(password)}` : user;
    const database = encodeURIComponent(read("POSTGRES_DB") ?? "steward");
    const hostPart = host.includes(":") ? `[${host}]` : host;
    return {
      kind: "postgres",
      connectionString: `postgres://${auth}@${hostPart}:${port}/${database}`,
      schema,
      poolSize,
      preparedStatements,
    };
  }
  return { kind: "embedded", dataDir };
}

function jwtConfig(read: (name: string) => string | undefined): JwtConfig | undefined {
  const secret = read("STEWARD_JWT_SECRET");
  const jwksUrl = read("STEWARD_JWT_JWKS_URL");
  if (!secret && !jwksUrl) return undefined;
  if (secret && jwksUrl) {
    throw new ConfigError("STEWARD_JWT_SECRET", "and STEWARD_JWT_JWKS_URL cannot both be set");
  }
  if (secret && secret.length < 32) {
    throw new ConfigError("STEWARD_JWT_SECRET", "must be at least 32 characters long");
  }
  if (jwksUrl && !/^https?:\/\//.test(jwksUrl)) {
    throw new ConfigError("STEWARD_JWT_JWKS_URL", "must be an http(s) URL");
  }
  const issuer = read("STEWARD_JWT_ISSUER");
  if (!issuer) throw new ConfigError("STEWARD_JWT_ISSUER", "is required when JWT authentication is enabled");
  const audience = read("STEWARD_JWT_AUDIENCE");
  if (!audience) {
    throw new ConfigError("STEWARD_JWT_AUDIENCE", "is required when JWT authentication is enabled");
  }
  return {
    secret,
    jwksUrl,
    issuer,
    audience,
    orgClaim: read("STEWARD_JWT_ORG_CLAIM") ?? "org_id",
    rolesClaim: read("STEWARD_JWT_ROLES_CLAIM") ?? "roles",
    teamClaim: read("STEWARD_JWT_TEAM_CLAIM") ?? "team",
  };
}

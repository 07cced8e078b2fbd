import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";

const KEY = "0".repeat(64);
const JWT_SECRET = "a-jwt-secret-that-is-at-least-32-chars";

/** Runs loadConfig and returns the ConfigError it throws. */
function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`expected loadConfig(${JSON.stringify(env)}) to throw`);
}

describe("loadConfig", () => {
  describe("managed agents", () => {
    it("collects STEWARD_AGENT_<NAME>_<KEY> variables, not Steward's own STEWARD_AGENTS_* settings", () => {
      const config = loadConfig({
        STEWARD_AGENT_LOG_SENTINEL_PATTERN: "PANIC",
        STEWARD_AGENTS_DIR: "/srv/agents",
        STEWARD_AGENTS_MAX_RESTARTS: "2",
      });
      expect(config.lifecycle.agentEnvironment).toEqual({ STEWARD_AGENT_LOG_SENTINEL_PATTERN: "PANIC" });
      expect(config.lifecycle).toMatchObject({ agentsDir: "/srv/agents", maxRestarts: 2 });
    });

    it("names the variable of a bad value", () => {
      expect(configError({ STEWARD_HEARTBEAT_SWEEP_MS: "0" }).variable).toBe("STEWARD_HEARTBEAT_SWEEP_MS");
      expect(configError({ STEWARD_AGENTS_WATCH: "yes" }).variable).toBe("STEWARD_AGENTS_WATCH");
      expect(configError({ NATS_URL: "http://nats:4222" }).variable).toBe("NATS_URL");
      expect(configError({ STEWARD_NATS_ACCOUNT_SEED: "SA…" }).variable).toBe("STEWARD_NATS_ACCOUNT_SEED");
    });

    it("reads NATS settings", () => {
      expect(loadConfig({ NATS_URL: "nats://127.0.0.1:4222" }).nats).toEqual({
        url: "nats://127.0.0.1:4222",
        accountSeed: undefined,
        credentialsTtlS: 86_400,
      });
    });
  });

  describe("defaults", () => {
    it("starts a development server on 0.0.0.0:8080 with the embedded database in ./.steward", () => {
      expect(loadConfig({})).toEqual({
        env: "development",
        host: "0.0.0.0",
        port: 8080,
        workerPort: 8081,
        dataDir: "./.steward",
        logLevel: "info",
        bodyLimitBytes: 1024 * 1024,
        database: { kind: "embedded", dataDir: "./.steward" },
        encryptionKey: undefined,
        previousEncryptionKeys: [],
        bootstrapAdminKey: undefined,
        shutdown: { delayMs: 0, timeoutMs: 25_000 },
        jwt: undefined,
        redis: undefined,
        rateLimitFailMode: "open",
        rateLimitTimeoutMs: 50,
        privateNetworks: { kind: "none" },
        dnsServers: [],
        invokeTimeoutMs: 30_000,
        abandonedCallAfterMs: 900_000,
        maxResponseBytes: 1024 * 1024,
        delivery: {
          publicUrl: "http://localhost:8080",
          retryDelaysMs: [2000, 10_000],
          pauseAfterMs: 3_600_000,
          timeoutMs: 10_000,
          telegramApiUrl: "https://api.telegram.org",
          notionApiUrl: "https://api.notion.com",
        },
        smtp: undefined,
        nats: undefined,
        executor: {
          stream: "AGENT_EXECUTION",
          subjectPrefix: "agent",
          consumer: "agent-executor-workers",
          ackWaitMs: 300_000,
          maxDeliver: 3,
          concurrency: 4,
          consume: true,
          maxStoredEvents: 10_000,
          llm: { baseUrl: "https://api.openai.com/v1", allowedBaseUrls: [], keys: {}, timeoutMs: 120_000 },
        },
        lifecycle: {
          agentsDir: "./agents",
          agentsOrg: "default",
          watchAgentsDir: true,
          heartbeatIntervalS: 30,
          heartbeatUnhealthyAfter: 3,
          heartbeatFailedAfter: 6,
          heartbeatSweepMs: 5_000,
          agentTokenTtlS: 900,
          discoveryTokenTtlS: 900,
          telemetryRetentionDays: 7,
          restartDelayMs: 1_000,
          maxRestarts: 5,
          stopGraceMs: 10_000,
          agentEnvironment: {},
          agentPath: "/usr/local/bin:/usr/bin:/bin",
          natsQueueGroup: "steward-lifecycle",
        },
      });
    });

    it("treats empty and blank variables as unset", () => {
      expect(loadConfig({ PORT: "", HOST: "  ", STEWARD_DATA_DIR: "", DATABASE_URL: " " })).toEqual(
        loadConfig({}),
      );
    });

    it("puts the embedded database in STEWARD_DATA_DIR", () => {
      const config = loadConfig({ STEWARD_DATA_DIR: "/var/lib/steward" });
      expect(config.dataDir).toBe("/var/lib/steward");
      expect(config.database).toEqual({ kind: "embedded", dataDir: "/var/lib/steward" });
    });
  });

  describe("server settings", () => {
    it("reads HOST, PORT, LOG_LEVEL and STEWARD_BODY_LIMIT", () => {
      const config = loadConfig({
        HOST: "127.0.0.1",
        PORT: "3000",
        LOG_LEVEL: "debug",
        STEWARD_BODY_LIMIT: "2048",
      });
      expect(config).toMatchObject({
        host: "127.0.0.1",
        port: 3000,
        logLevel: "debug",
        bodyLimitBytes: 2048,
      });
    });

    it.each(["1", "65535", " 443 "])("accepts PORT=%j", (port) => {
      expect(loadConfig({ PORT: port }).port).toBe(Number(port));
    });

    it.each(["0", "65536", "-1", "80.5", "eighty", "8080abc", "1e3", "0x50"])(
      "refuses PORT=%j with an error naming PORT",
      (port) => {
        const error = configError({ PORT: port });
        expect(error.variable).toBe("PORT");
        expect(error.message).toContain("PORT");
        expect(error.message).toContain(port);
      },
    );

    it.each([
      ["LOG_LEVEL", "verbose"],
      ["STEWARD_ENV", "staging"],
      ["STEWARD_BODY_LIMIT", "100"],
      ["STEWARD_DB_POOL_SIZE", "0"],
      ["STEWARD_DB_POOL_SIZE", "201"],
    ])("refuses %s=%j, naming it", (name, value) => {
      const error = configError({ [name]: value });
      expect(error.variable).toBe(name);
      expect(error.message.startsWith(name)).toBe(true);
    });
  });

  describe("encryption keys", () => {
    it("refuses production without STEWARD_ENCRYPTION_KEY, naming it", () => {
      const error = configError({ STEWARD_ENV: "production" });
      expect(error.variable).toBe("STEWARD_ENCRYPTION_KEY");
      expect(error.message).toContain("STEWARD_ENCRYPTION_KEY");
    });

    it("accepts production with an encryption key", () => {
      const config = loadConfig({ STEWARD_ENV: "production", STEWARD_ENCRYPTION_KEY: KEY });
      expect(config.env).toBe("production");
      expect(config.encryptionKey).toBe(KEY);
    });

    it("splits STEWARD_ENCRYPTION_PREVIOUS_KEYS on commas, dropping blanks", () => {
      const config = loadConfig({ STEWARD_ENCRYPTION_PREVIOUS_KEYS: " a , b,, c ," });
      expect(config.previousEncryptionKeys).toEqual(["a", "b", "c"]);
    });

    it("refuses a bootstrap admin key shorter than 16 characters", () => {
      expect(configError({ STEWARD_BOOTSTRAP_ADMIN_KEY: "too-short" }).variable).toBe(
        "STEWARD_BOOTSTRAP_ADMIN_KEY",
      );
      expect(loadConfig({ STEWARD_BOOTSTRAP_ADMIN_KEY: "sixteen-chars-ok" }).bootstrapAdminKey).toBe(
        "sixteen-chars-ok",
      );
    });
  });

  describe("database", () => {
    it("builds a postgres connection string from POSTGRES_*", () => {
      const config = loadConfig({
        POSTGRES_HOST: "db.internal",
        POSTGRES_PORT: "6543",
        POSTGRES_USER: "steward",
        POSTGRES_PASSWORD: "hunter2",
        POSTGRES_DB: "registry",
      });
      expect(config.database).toEqual({
        kind: "postgres",
        connectionString: "postgres://steward:hunter2@db.internal:6543/registry",
        schema: "public",
        poolSize: 10,
        preparedStatements: true,
      });
    });

    it("defaults to user postgres, port 5432, database steward and no password", () => {
      expect(loadConfig({ POSTGRES_HOST: "localhost" }).database).toMatchObject({
        connectionString: "postgres://postgres@localhost:5432/steward",
      });
    });

    it("URL-encodes the user, password and database name", () => {
      const config = loadConfig({
        POSTGRES_HOST: "db",
        POSTGRES_USER: "app@corp",
        POSTGRES_PASSWORD: "p@ss:w/rd#?%",
        POSTGRES_DB: "my db",
      });
      if (config.database.kind !== "postgres") throw new Error("expected postgres");
      const url = new URL(config.database.connectionString);
      expect(decodeURIComponent(url.username)).toBe("app@corp");
      expect(decodeURIComponent(url.password)).toBe("p@ss:w/rd#?%");
      expect(url.hostname).toBe("db");
      expect(decodeURIComponent(url.pathname)).toBe("/my db");
    });

    it("brackets an IPv6 POSTGRES_HOST", () => {
      expect(loadConfig({ POSTGRES_HOST: "::1" }).database).toMatchObject({
        connectionString: "postgres://postgres@[::1]:5432/steward",
      });
    });

    it("refuses a bad POSTGRES_PORT, naming it", () => {
      expect(configError({ POSTGRES_HOST: "db", POSTGRES_PORT: "99999" }).variable).toBe("POSTGRES_PORT");
    });

    it("prefers DATABASE_URL over POSTGRES_*", () => {
      const url = "postgresql://u:p@primary:5432/steward?sslmode=require";
      const config = loadConfig({ DATABASE_URL: url, POSTGRES_HOST: "ignored", POSTGRES_PASSWORD: "x" });
      expect(config.database).toEqual({
        kind: "postgres",
        connectionString: url,
        schema: "public",
        poolSize: 10,
        preparedStatements: true,
      });
    });

    it("turns prepared statements off for poolers that cannot keep them, and refuses other values", () => {
      const url = "postgres://u@pgbouncer:6432/steward";
      expect(loadConfig({ DATABASE_URL: url, STEWARD_DB_PREPARED_STATEMENTS: "off" }).database).toMatchObject(
        {
          preparedStatements: false,
        },
      );
      expect(configError({ DATABASE_URL: url, STEWARD_DB_PREPARED_STATEMENTS: "no" }).variable).toBe(
        "STEWARD_DB_PREPARED_STATEMENTS",
      );
    });

    it("reads the shutdown delay and deadline in seconds, and refuses a deadline of 0", () => {
      expect(
        loadConfig({ STEWARD_SHUTDOWN_DELAY_SECONDS: "5", STEWARD_SHUTDOWN_TIMEOUT_SECONDS: "40" }).shutdown,
      ).toEqual({ delayMs: 5_000, timeoutMs: 40_000 });
      expect(configError({ STEWARD_SHUTDOWN_TIMEOUT_SECONDS: "0" }).variable).toBe(
        "STEWARD_SHUTDOWN_TIMEOUT_SECONDS",
      );
    });

    it("refuses a DATABASE_URL that is not postgres", () => {
      expect(configError({ DATABASE_URL: "mysql://u@h/db" }).variable).toBe("DATABASE_URL");
    });

    it("reads STEWARD_DB_SCHEMA and STEWARD_DB_POOL_SIZE", () => {
      const config = loadConfig({
        DATABASE_URL: "postgres://h/db",
        STEWARD_DB_SCHEMA: "steward_test_1",
        STEWARD_DB_POOL_SIZE: "25",
      });
      expect(config.database).toMatchObject({ schema: "steward_test_1", poolSize: 25 });
    });

    it.each(["Public", "1schema", "my-schema", "a;drop schema public", "x".repeat(64), '"quoted"'])(
      "refuses STEWARD_DB_SCHEMA=%j, naming it",
      (schema) => {
        const error = configError({ DATABASE_URL: "postgres://h/db", STEWARD_DB_SCHEMA: schema });
        expect(error.variable).toBe("STEWARD_DB_SCHEMA");
        expect(error.message).toContain("STEWARD_DB_SCHEMA");
      },
    );
  });

  describe("JWT", () => {
    const jwtEnv = { STEWARD_JWT_ISSUER: "https://idp.example.com/", STEWARD_JWT_AUDIENCE: "steward" };

    it("is off when neither a secret nor a JWKS URL is given", () => {
      expect(loadConfig(jwtEnv).jwt).toBeUndefined();
    });

    it("reads a secret with issuer, audience and default claim names", () => {
      expect(loadConfig({ ...jwtEnv, STEWARD_JWT_SECRET: JWT_SECRET }).jwt).toEqual({
        secret: JWT_SECRET,
        jwksUrl: undefined,
        issuer: "https://idp.example.com/",
        audience: "steward",
        orgClaim: "org_id",
        rolesClaim: "roles",
        teamClaim: "team",
      });
    });

    it("reads a JWKS URL and custom claim names", () => {
      const jwt = loadConfig({
        ...jwtEnv,
        STEWARD_JWT_JWKS_URL: "https://idp.example.com/.well-known/jwks.json",
        STEWARD_JWT_ORG_CLAIM: "tenant",
        STEWARD_JWT_ROLES_CLAIM: "groups",
        STEWARD_JWT_TEAM_CLAIM: "squad",
      }).jwt;
      expect(jwt).toMatchObject({
        jwksUrl: "https://idp.example.com/.well-known/jwks.json",
        orgClaim: "tenant",
      });
      expect(jwt).toMatchObject({ rolesClaim: "groups", teamClaim: "squad" });
    });

    it.each([
      [{ STEWARD_JWT_SECRET: JWT_SECRET, STEWARD_JWT_AUDIENCE: "steward" }, "STEWARD_JWT_ISSUER"],
      [{ STEWARD_JWT_SECRET: JWT_SECRET, STEWARD_JWT_ISSUER: "iss" }, "STEWARD_JWT_AUDIENCE"],
      [{ STEWARD_JWT_JWKS_URL: "https://idp/jwks", STEWARD_JWT_AUDIENCE: "steward" }, "STEWARD_JWT_ISSUER"],
      [{ ...jwtEnv, STEWARD_JWT_SECRET: "too-short" }, "STEWARD_JWT_SECRET"],
      [
        { ...jwtEnv, STEWARD_JWT_SECRET: JWT_SECRET, STEWARD_JWT_JWKS_URL: "https://idp/jwks" },
        "STEWARD_JWT_SECRET",
      ],
      [{ ...jwtEnv, STEWARD_JWT_JWKS_URL: "ftp://idp/jwks" }, "STEWARD_JWT_JWKS_URL"],
    ])("refuses %j, naming %s", (env, variable) => {
      const error = configError(env);
      expect(error.variable).toBe(variable);
      expect(error.message).toContain(variable);
    });
  });

  describe("invocation settings", () => {
    it("uses Redis from REDIS_URL, or from DRAGONFLY_*, with a key prefix", () => {
      expect(loadConfig({ REDIS_URL: "redis://cache:6379/2" }).redis).toEqual({
        url: "redis://cache:6379/2",
        keyPrefix: "steward:",
      });
      expect(
        loadConfig({ DRAGONFLY_HOST: "df", DRAGONFLY_PASSWORD: "p@ss", STEWARD_REDIS_PREFIX: "x:" }).redis,
      ).toEqual({ url: "redis://:p%40ss@df:6379", keyPrefix: "x:" });
      expect(() => loadConfig({ REDIS_URL: "http://cache" })).toThrow(/REDIS_URL/);
    });

    it("reads the fail mode, refusing anything but open or closed", () => {
      expect(loadConfig({ STEWARD_RATE_LIMIT_FAIL_MODE: "closed" }).rateLimitFailMode).toBe("closed");
      expect(() => loadConfig({ STEWARD_RATE_LIMIT_FAIL_MODE: "maybe" })).toThrow(
        /STEWARD_RATE_LIMIT_FAIL_MODE/,
      );
    });

    it("reads how long a decision waits for Redis, within 5 ms to 10 s", () => {
      expect(loadConfig({ STEWARD_RATE_LIMIT_TIMEOUT_MS: "1000" }).rateLimitTimeoutMs).toBe(1000);
      expect(() => loadConfig({ STEWARD_RATE_LIMIT_TIMEOUT_MS: "1" })).toThrow(
        /STEWARD_RATE_LIMIT_TIMEOUT_MS/,
      );
    });

    it("reads private-network access as true, false or CIDRs", () => {
      expect(loadConfig({ STEWARD_ALLOW_PRIVATE_NETWORKS: "true" }).privateNetworks).toEqual({ kind: "all" });
      expect(loadConfig({ STEWARD_ALLOW_PRIVATE_NETWORKS: "false" }).privateNetworks).toEqual({
        kind: "none",
      });
      expect(
        loadConfig({ STEWARD_ALLOW_PRIVATE_NETWORKS: "127.0.0.1/32, fd00::/8" }).privateNetworks,
      ).toEqual({
        kind: "cidrs",
        cidrs: ["127.0.0.1/32", "fd00::/8"],
      });
      expect(() => loadConfig({ STEWARD_ALLOW_PRIVATE_NETWORKS: "yes" })).toThrow(
        /STEWARD_ALLOW_PRIVATE_NETWORKS/,
      );
    });

    it("bounds the invoke timeout and response size", () => {
      expect(loadConfig({ STEWARD_INVOKE_TIMEOUT_MS: "5000" }).invokeTimeoutMs).toBe(5000);
      expect(() => loadConfig({ STEWARD_INVOKE_TIMEOUT_MS: "0" })).toThrow(/STEWARD_INVOKE_TIMEOUT_MS/);
      expect(() => loadConfig({ STEWARD_MAX_RESPONSE_BYTES: "10" })).toThrow(/STEWARD_MAX_RESPONSE_BYTES/);
    });
  });

  describe("delivery settings", () => {
    it("reads the retry schedule as durations", () => {
      expect(
        loadConfig({ STEWARD_DELIVERY_RETRY_DELAYS: "5s,5m,30m,2h,5h,10h" }).delivery.retryDelaysMs,
      ).toEqual([5000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000]);
      expect(() => loadConfig({ STEWARD_DELIVERY_RETRY_DELAYS: "5s,soon" })).toThrow(
        /STEWARD_DELIVERY_RETRY_DELAYS/,
      );
    });

    it("takes the public URL without a trailing slash and refuses a non-URL", () => {
      expect(loadConfig({ STEWARD_PUBLIC_URL: "https://steward.example.com/" }).delivery.publicUrl).toBe(
        "https://steward.example.com",
      );
      expect(loadConfig({ PORT: "9000" }).delivery.publicUrl).toBe("http://localhost:9000");
      expect(() => loadConfig({ STEWARD_TELEGRAM_API_URL: "telegram" })).toThrow(/STEWARD_TELEGRAM_API_URL/);
    });
  });
});

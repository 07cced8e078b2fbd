#!/usr/bin/env node
import { parseArgs } from "node:util";
import type { Logger } from "pino";
import { createSteward, type Steward } from "./app.js";
import { ApiKeyService, SYSTEM_ACTOR } from "./auth/api-key.service.js";
import { isRole, ROLES } from "./auth/permissions.js";
import { type Config, ConfigError, loadClientConfig, loadConfig, type ShutdownConfig } from "./config.js";
import { rotateKeys } from "./crypto/key-rotation-cli.js";
import { openDatabase } from "./db/database.js";
import { DirectoryInUseError } from "./db/directory-lock.js";
import { runMigrations } from "./db/migrate.js";
import { AGENTS_USAGE, AgentsCommandError, runAgentsCommand } from "./lifecycle/agents-cli.js";
import { createLogger, withoutQueryValues } from "./observability/logger.js";
import { DEFAULT_ORGANIZATION_ID, OrganizationService } from "./orgs/organization.service.js";

const USAGE = `Usage: steward <command> [options]

Commands:
  serve                      Start the API server (the default); with NATS_URL it also consumes jobs
  worker                     Consume jobs from JetStream (needs NATS_URL); health and metrics on STEWARD_WORKER_PORT
  migrate                    Apply database migrations and exit
  keys create --role ROLE    Create an API key and print it once
      [--name NAME] [--org ORGANIZATION_ID] [--team TEAM] [--expires-at ISO-8601] [--platform-admin]
  keys rotate [--dry-run]    Re-encrypt stored secrets with STEWARD_ENCRYPTION_KEY (the old key listed in
                             STEWARD_ENCRYPTION_PREVIOUS_KEYS); --dry-run only counts

${AGENTS_USAGE}

Roles: ${ROLES.join(", ")}
Configuration comes from the environment; see README.md.`;

class UsageError extends Error {}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

async function serve(config: Config, logger: Logger): Promise<void> {
  const steward = await createSteward(config, logger);
  await steward.server.listen({ host: config.host, port: config.port });
  if (steward.firstAdminKey) {
    print(
      [
        "",
        "  First start: created an admin API key for organization 'default'. It is shown only now:",
        "",
        `      ${steward.firstAdminKey}`,
        "",
        "  Use it as 'Authorization: Bearer <key>'. Create more with POST /api/v1/api-keys, or",
        "  (server stopped, on the embedded store) npm run steward -- keys create --role developer.",
        "  Set STEWARD_BOOTSTRAP_ADMIN_KEY to choose the admin key yourself.",
        "",
      ].join("\n"),
    );
  }
  stopOnSignals(steward, config.shutdown, logger);
}

/**
 * The job consumer, so workers scale apart from the API: the same process, answering
 * only /health, /ready and /metrics, on STEWARD_WORKER_PORT.
 */
async function worker(config: Config, logger: Logger): Promise<void> {
  if (!config.nats)
    throw new ConfigError("NATS_URL", "is required by `steward worker`: it consumes JetStream");
  if (!config.executor.consume)
    throw new ConfigError("STEWARD_JOBS_CONSUME", "is off, which leaves `steward worker` nothing to do");
  const steward = await createSteward(config, logger, "operations");
  try {
    await steward.server.listen({ host: config.host, port: config.workerPort });
  } catch (error) {
    // The consumer is already running (a second worker on this host, say, on a port in use).
    await steward.close(config.shutdown);
    throw error;
  }
  logger.info({ stream: config.executor.stream }, "worker consuming jobs");
  stopOnSignals(steward, config.shutdown, logger);
}

/** Past the shutdown deadline, how long closing connections may still take before the process exits anyway. */
const EXIT_GRACE_MS = 5_000;

function stopOnSignals(steward: Steward, shutdown: ShutdownConfig, logger: Logger): void {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, timeout_ms: shutdown.timeoutMs }, "shutting down");
    setTimeout(
      () => {
        logger.error("shutdown did not complete in time; exiting");
        process.exit(1);
      },
      shutdown.delayMs + shutdown.timeoutMs + EXIT_GRACE_MS,
    ).unref();
    await steward.close(shutdown);
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}

async function migrate(config: Config, logger: Logger): Promise<void> {
  const database = await openDatabase(config.database, logger);
  try {
    const result = await runMigrations(database.pool, database.schema);
    print(
      result.applied.length > 0
        ? `Applied ${result.applied.length} migration(s): ${result.applied.join(", ")}`
        : `Database is up to date (${result.alreadyApplied} migration(s) applied before).`,
    );
  } finally {
    await database.close();
  }
}

async function createKey(config: Config, logger: Logger, args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      role: { type: "string" },
      name: { type: "string" },
      org: { type: "string", default: DEFAULT_ORGANIZATION_ID },
      team: { type: "string" },
      "expires-at": { type: "string" },
      "platform-admin": { type: "boolean", default: false },
    },
  });
  if (!isRole(values.role)) throw new UsageError(`--role must be one of ${ROLES.join(", ")}`);
  const expiresAt = values["expires-at"] ? new Date(values["expires-at"]) : null;
  if (expiresAt && Number.isNaN(expiresAt.getTime()))
    throw new UsageError("--expires-at must be an ISO-8601 date");

  const database = await openDatabase(config.database, logger);
  try {
    await runMigrations(database.pool, database.schema);
    const organizations = new OrganizationService(database.db);
    await organizations.ensureDefault();
    if (!(await organizations.exists(values.org)))
      throw new UsageError(`organization ${values.org} does not exist`);
    const { row, key } = await new ApiKeyService(database.db).create(
      {
        organizationId: values.org,
        name: values.name ?? `${values.role} key`,
        role: values.role,
        team: values.team ?? null,
        expiresAt,
        platformAdmin: values["platform-admin"],
      },
      { actor: SYSTEM_ACTOR },
    );
    print(
      `Created API key ${row.id} (${row.role}) for organization ${row.organizationId}. It is shown only once:\n`,
    );
    print(key);
  } finally {
    await database.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const [command = "serve", ...rest] = argv;
  if (command === "help" || command === "--help" || command === "-h") {
    print(USAGE);
    return;
  }
  if (command === "agents") {
    print(await runAgentsCommand(loadClientConfig(), rest));
    return;
  }
  const config = loadConfig();
  // CLI commands other than serve keep routine logs quiet; what they report is printed.
  const logger = createLogger(command === "serve" || command === "worker" ? config.logLevel : "warn");
  if (command === "serve") return serve(config, logger);
  if (command === "worker") return worker(config, logger);
  if (command === "migrate") return migrate(config, logger);
  if (command === "keys" && rest[0] === "create") return createKey(config, logger, rest.slice(1));
  if (command === "keys" && rest[0] === "rotate") return rotateKeys(config, logger, rest.slice(1));
  throw new UsageError(`unknown command: ${argv.join(" ")}`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof ConfigError) {
    console.error(`steward: invalid configuration: ${error.message}`);
  } else if (error instanceof AgentsCommandError) {
    console.error(`steward: ${error.message}`);
  } else if (error instanceof UsageError) {
    console.error(`steward: ${error.message}\n\n${USAGE}`);
  } else if (error instanceof DirectoryInUseError) {
    console.error(`steward: ${error.message}. Stop it first, or use the API (POST /api/v1/api-keys).`);
  } else {
    console.error("steward: failed:", error instanceof Error ? withoutQueryValues(error.message) : error);
  }
  process.exit(1);
});

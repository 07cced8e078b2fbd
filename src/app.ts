import type { FastifyInstance } from "fastify";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { a2aImportRoutes } from "./a2a/a2a-import.routes.js";
import { A2aImportService } from "./a2a/a2a-import.service.js";
import { a2aServerRoutes } from "./a2a/a2a-server.routes.js";
import { PublishedAgents } from "./a2a/published-agents.js";
import { externalAgentRoutes } from "./agents/agent.routes.js";
import { ExternalAgentService } from "./agents/agent.service.js";
import { configSchemaRoutes } from "./agents/config-schema.routes.js";
import { approvalRoutes } from "./approvals/approval.routes.js";
import { ApprovalService } from "./approvals/approval.service.js";
import { ApprovalRulesGate } from "./approvals/approval-gate.js";
import { approvalRuleRoutes } from "./approvals/approval-rule.routes.js";
import { ApprovalRuleService } from "./approvals/approval-rule.service.js";
import { ApprovalScheduler } from "./approvals/approval-scheduler.js";
import { createSmtpMailer } from "./approvals/mailer.js";
import { registerAccessControl } from "./auth/access-control.js";
import { apiKeyRoutes } from "./auth/api-key.routes.js";
import { ApiKeyService } from "./auth/api-key.service.js";
import { createAuthenticator } from "./auth/authenticator.js";
import { ensureAdminAccess } from "./auth/bootstrap.js";
import { createJwtAuthenticator } from "./auth/jwt.js";
import type { Config, ShutdownConfig } from "./config.js";
import { createSecretBox } from "./crypto/key-ring.js";
import { type Database, openDatabase } from "./db/database.js";
import { DutyLeases } from "./db/duty-leases.js";
import { runMigrations } from "./db/migrate.js";
import { ADAPTERS } from "./delivery/adapters/registry.js";
import { CallbackDeliveryTarget } from "./delivery/callback-target.js";
import { deliveryRoutes } from "./delivery/delivery.routes.js";
import { DeliveryStore } from "./delivery/delivery-store.js";
import { DeliveryWorker } from "./delivery/delivery-worker.js";
import { createHttpSender } from "./delivery/http-sender.js";
import { InvocationOutbox } from "./delivery/invocation-outbox.js";
import { PlatformDeliveryTarget } from "./delivery/platform-target.js";
import { webhookRoutes } from "./delivery/webhooks/webhook.routes.js";
import { WebhookService } from "./delivery/webhooks/webhook.service.js";
import { WebhookEventOutbox } from "./delivery/webhooks/webhook-outbox.js";
import { WebhookDeliveryTarget } from "./delivery/webhooks/webhook-target.js";
import { cloudEventRoutes } from "./executor/cloudevent.routes.js";
import { Executor } from "./executor/executor.js";
import { jobRoutes } from "./executor/job.routes.js";
import { GovernanceActivity } from "./governance/activity.js";
import { governanceActivityRoutes } from "./governance/activity.routes.js";
import { budgetRoutes } from "./governance/budget/budget.routes.js";
import { BudgetService } from "./governance/budget/budget.service.js";
import { governanceStatusRoutes } from "./governance/governance-status.routes.js";
import { policyRoutes } from "./governance/policies/policy.routes.js";
import { PolicyService } from "./governance/policies/policy.service.js";
import type { RateLimiter } from "./governance/rate-limit/rate-limiter.js";
import { MemoryRateLimiter } from "./governance/rate-limit/rate-limiter.memory.js";
import { createRedisClient, RedisRateLimiter } from "./governance/rate-limit/rate-limiter.redis.js";
import { governanceSettingsRoutes } from "./governance/settings/governance-settings.routes.js";
import { GovernanceSettingsService } from "./governance/settings/governance-settings.service.js";
import { registerDashboard } from "./http/dashboard.js";
import { createHttpServer } from "./http/server.js";
import { AbandonedCallSweeper } from "./invocation/abandoned-calls.js";
import { AddressGuard, createGuardedAgent } from "./invocation/address-guard.js";
import { AgentClient } from "./invocation/agent-client.js";
import { invocationRoutes } from "./invocation/invocation.routes.js";
import { InvocationService } from "./invocation/invocation.service.js";
import { InvocationJournal } from "./invocation/invocation-journal.js";
import { InvocationStore } from "./invocation/invocation-store.js";
import { Lifecycle } from "./lifecycle/lifecycle.js";
import { lineageRoutes } from "./lineage/lineage.routes.js";
import { LineageService } from "./lineage/lineage.service.js";
import { type DependencyCheck, healthRoutes, type ReadinessChecks } from "./observability/health.routes.js";
import { registerHttpMetrics } from "./observability/http-metrics.js";
import { createMetrics } from "./observability/metrics.js";
import { metricsRoutes } from "./observability/metrics.routes.js";
import { organizationRoutes } from "./orgs/organization.routes.js";
import { DEFAULT_ORGANIZATION_ID, OrganizationService } from "./orgs/organization.service.js";
import { closeBefore } from "./shutdown.js";
import { STEWARD_VERSION } from "./version.js";

export interface Steward {
  server: FastifyInstance;
  database: Database;
  /** Set on a first start without any key: the admin key to show once. */
  firstAdminKey?: string;
  /**
   * Shuts down: readiness goes false, then (after `delayMs`) the listener closes, and
   * in-flight requests, jobs and deliveries finish — or, past `timeoutMs`, are cut — before
   * every connection closes. Without a timeout it waits for all of them.
   */
  close(options?: Partial<ShutdownConfig>): Promise<void>;
}

/**
 * What a Steward process answers over HTTP: the whole API (`steward serve`), or only
 * /health, /ready and /metrics (`steward worker`, which takes its work from JetStream).
 */
export type StewardRoutes = "api" | "operations";

/**
 * The composition root: builds every store, service and route from the config. The
 * only place that decides which implementation of a backing service is used.
 */
export async function createSteward(
  config: Config,
  logger: Logger,
  serves: StewardRoutes = "api",
): Promise<Steward> {
  const database = await openDatabase(config.database, logger);
  const closers: Array<() => Promise<void>> = [];
  /**
   * What takes in new work besides the listener — the delivery worker, the job consumer,
   * the schedulers. Stopped first, together with the listener, then the closers run.
   */
  const intake: Array<() => Promise<void>> = [];
  let shuttingDown = false;
  /** Set when shutdown begins; the duties that stop wait for their work until it passes. */
  let deadline: AbortSignal | undefined;
  try {
    const migrations = await runMigrations(database.pool, database.schema);
    if (migrations.applied.length > 0) logger.info({ applied: migrations.applied }, "database migrated");

    const leases = new DutyLeases(database.db, logger);
    // Released once the duties have stopped (closers run after intake), so a successor takes them over at once.
    closers.push(() => leases.releaseAll());
    const secretBox = await createSecretBox(config, logger);
    const guard = new AddressGuard(config.privateNetworks, { dnsServers: config.dnsServers });
    const organizations = new OrganizationService(database.db);
    const apiKeys = new ApiKeyService(database.db);
    const agents = new ExternalAgentService(database.db, secretBox, guard);
    const cardFetcher = createGuardedAgent(guard);
    closers.push(() => closeBefore(cardFetcher, deadline));
    const a2aImports = new A2aImportService(database.db, agents, cardFetcher);
    const settings = new GovernanceSettingsService(database.db);
    const policies = new PolicyService(database.db);
    const webhooks = new WebhookService(database.db, secretBox, guard);
    const webhookEvents = new WebhookEventOutbox(webhooks);
    const budgets = new BudgetService(database.db, webhookEvents);
    const lineage = new LineageService(database.db);
    const metrics = createMetrics();
    const { limiter, redis } = await createRateLimiter(config, logger);
    closers.push(() => limiter.close());
    const agentClient = new AgentClient({ guard, maxResponseBytes: config.maxResponseBytes });
    closers.push(() => agentClient.close(deadline));
    // A claim outlives one attempt with room to spare; after a crash, that long until another worker takes over.
    const deliveries = new DeliveryStore(database.db, config.delivery.timeoutMs * 2 + 5_000);
    const sender = createHttpSender(guard);
    closers.push(() => sender.close(deadline));
    const worker = new DeliveryWorker({
      store: deliveries,
      targets: {
        platform: new PlatformDeliveryTarget(database.db, agents, ADAPTERS, {
          publicUrl: config.delivery.publicUrl,
          telegramApiUrl: config.delivery.telegramApiUrl,
          notionApiUrl: config.delivery.notionApiUrl,
        }),
        webhook: new WebhookDeliveryTarget(database.db, secretBox),
        callback: new CallbackDeliveryTarget(database.db),
      },
      send: sender.send,
      logger,
      metrics,
      retryDelaysMs: config.delivery.retryDelaysMs,
      pauseAfterMs: config.delivery.pauseAfterMs,
      timeoutMs: config.delivery.timeoutMs,
      leases,
    });
    const wakeWorker = () => worker.wake();
    const invocationOutbox = new InvocationOutbox(deliveries, webhookEvents, ADAPTERS, wakeWorker);
    const approvals = new ApprovalService(database.db, webhookEvents);
    const approvalRules = new ApprovalRuleService(database.db);
    const invocationStore = new InvocationStore(database.db);
    const journal = new InvocationJournal(database.db, invocationStore, budgets, invocationOutbox);
    const invocationService = new InvocationService({
      agents,
      store: invocationStore,
      journal,
      settings,
      policies,
      limiter,
      budgets,
      approvals: new ApprovalRulesGate(database.db, approvals, approvalRules, invocationOutbox),
      client: agentClient,
      metrics,
      logger,
      environment: config.env,
      defaultTimeoutMs: config.invokeTimeoutMs,
    });

    await organizations.ensureDefault();
    // Only a process serving the API can show a first admin key to anyone: a worker
    // starting first on a fresh database would create it unseen.
    const { firstAdminKey } =
      serves === "api"
        ? await ensureAdminAccess(apiKeys, config.bootstrapAdminKey, DEFAULT_ORGANIZATION_ID, logger)
        : {};

    const verifyJwt = config.jwt
      ? createJwtAuthenticator(config.jwt, async (claim) => (await organizations.findByIdOrName(claim))?.id)
      : undefined;
    const executor = await Executor.create({
      config,
      database,
      invocations: invocationService,
      guard,
      metrics,
      logger,
      leases,
    });
    closers.push(() => executor.close(deadline));
    intake.push(() => executor.stopConsuming(deadline));
    const lifecycle = await Lifecycle.create({
      config,
      db: database.db,
      secretBox,
      organizations,
      webhookEvents,
      deliveries,
      wakeDelivery: wakeWorker,
      leases,
      logger,
    });
    intake.push(() => lifecycle.stop(deadline));
    const authenticate = createAuthenticator(
      apiKeys,
      (token) => lifecycle.agents.authenticate(token),
      verifyJwt,
    );

    const server = await createHttpServer({
      logger,
      bodyLimitBytes: config.bodyLimitBytes,
      version: STEWARD_VERSION,
      api: serves === "api",
    });
    registerHttpMetrics(server, metrics.httpRequestDuration);
    await server.register(
      healthRoutes({
        databaseKind: database.kind,
        shuttingDown: () => shuttingDown,
        checks: readinessChecks({
          database: () => database.ping(),
          redis: redis ? async () => void (await redis.ping()) : undefined,
          nats: config.nats ? () => executor.ping() : undefined,
          serves,
        }),
      }),
    );
    await server.register(metricsRoutes(metrics.registry));
    if (serves === "api") {
      await server.register(
        async (api) => {
          registerAccessControl(api, authenticate);
          await api.register(organizationRoutes(organizations));
          await api.register(apiKeyRoutes(apiKeys, organizations));
          await api.register(externalAgentRoutes(agents));
          await api.register(a2aImportRoutes(a2aImports));
          await api.register(configSchemaRoutes());
          await api.register(invocationRoutes(invocationService, agents, lineage));
          await api.register(budgetRoutes(budgets, agents, settings));
          await api.register(governanceSettingsRoutes(settings));
          await api.register(
            governanceStatusRoutes({ db: database.db, agents, budgets, limiter, policies, settings }),
          );
          await api.register(
            governanceActivityRoutes({ activity: new GovernanceActivity(database.db), agents }),
          );
          await api.register(policyRoutes(policies));
          await api.register(lineageRoutes(lineage));
          await api.register(deliveryRoutes(deliveries, agents, wakeWorker));
          await api.register(webhookRoutes(webhooks));
          await api.register(approvalRoutes(approvals, invocationService, agents));
          await api.register(approvalRuleRoutes(approvalRules));
          await api.register(lifecycle.routes());
          await api.register(jobRoutes(executor));
        },
        { prefix: "/api/v1" },
      );
      await server.register(async (root) => {
        registerAccessControl(root, authenticate);
        await root.register(cloudEventRoutes(executor));
      });
      await server.register(
        async (a2a) => {
          registerAccessControl(a2a, authenticate);
          await a2a.register(
            a2aServerRoutes({
              published: new PublishedAgents(agents, lineage),
              invocations: invocationService,
              publicUrl: config.delivery.publicUrl,
            }),
          );
        },
        { prefix: "/a2a" },
      );
      await server.register(lifecycle.publicRoutes(), { prefix: "/api/v1" });
      if (!(await registerDashboard(server)))
        logger.warn("the dashboard is not built (npm run build builds it); serving the API only");
    }
    await server.ready();
    worker.start();
    intake.push(() => worker.stop(deadline));
    const mailer = config.smtp ? createSmtpMailer(config.smtp) : undefined;
    if (mailer) closers.push(async () => mailer.close());
    const approvalScheduler = new ApprovalScheduler({
      approvals,
      invocations: invocationService,
      logger,
      mailer,
      publicUrl: config.delivery.publicUrl,
      leases,
    });
    approvalScheduler.start();
    const abandonedCalls = new AbandonedCallSweeper({
      db: database.db,
      journal,
      leases,
      logger,
      abandonAfterMs: config.abandonedCallAfterMs,
      intervalMs: Math.min(ABANDONED_SWEEP_INTERVAL_MS, config.abandonedCallAfterMs),
    });
    abandonedCalls.start();
    intake.push(() => abandonedCalls.stop(deadline));
    intake.push(() => approvalScheduler.stop(deadline));
    await lifecycle.start();
    await executor.start();

    return {
      server,
      database,
      firstAdminKey,
      async close({ delayMs = 0, timeoutMs }: Partial<ShutdownConfig> = {}) {
        shuttingDown = true;
        if (delayMs > 0) {
          logger.info({ delay_ms: delayMs }, "not ready; closing the listener after the shutdown delay");
          await new Promise((resolve) => setTimeout(resolve, delayMs));
        }
        const cutRequests = () => {
          logger.warn({ timeout_ms: timeoutMs }, "shutdown deadline passed; cutting what is still under way");
          server.server.closeAllConnections();
          // Upgraded sockets are not among the server's connections; a peer that never
          // answers the close frame would otherwise hold the process.
          for (const socket of server.websocketServer?.clients ?? []) socket.terminate();
        };
        if (timeoutMs !== undefined) {
          deadline = AbortSignal.timeout(timeoutMs);
          deadline.addEventListener("abort", cutRequests, { once: true });
        }
        try {
          await Promise.all([server.close(), stopAll(intake, logger)]);
        } finally {
          await closeAll(closers, logger);
          deadline?.removeEventListener("abort", cutRequests);
          await database.close();
        }
      },
    };
  } catch (error) {
    await stopAll(intake, logger);
    await closeAll(closers, logger);
    await database.close();
    throw error;
  }
}

/** Stops every source of new work at once; one failing does not keep the others running. */
async function stopAll(intake: Array<() => Promise<void>>, logger: Logger): Promise<void> {
  const results = await Promise.allSettled(intake.map((stop) => stop()));
  for (const result of results) {
    if (result.status === "rejected") logger.error({ err: result.reason }, "error while shutting down");
  }
}

/** Closes in reverse order of opening; one failing does not keep the others open. */
async function closeAll(closers: Array<() => Promise<void>>, logger: Logger): Promise<void> {
  for (const close of closers.reverse()) {
    try {
      await close();
    } catch (error) {
      logger.error({ err: error }, "error while shutting down");
    }
  }
}

/** How often one replica looks for calls abandoned by a process that died. */
const ABANDONED_SWEEP_INTERVAL_MS = 60_000;
/** How long start-up waits for Redis before serving with the fail mode in charge. */
const REDIS_READY_WAIT_MS = 5_000;
/** During an outage the client reports every reconnect attempt; one log line per this period is enough. */
const REDIS_ERROR_LOG_INTERVAL_MS = 30_000;

/**
 * Redis when configured (shared by every replica), otherwise in memory (one process);
 * with the Redis connection, which readiness pings.
 */
async function createRateLimiter(
  config: Config,
  logger: Logger,
): Promise<{ limiter: RateLimiter; redis?: Redis }> {
  if (!config.redis) return { limiter: new MemoryRateLimiter() };
  let lastLogged = 0;
  const logThrottled = (error: unknown, message: string) => {
    if (Date.now() - lastLogged < REDIS_ERROR_LOG_INTERVAL_MS) return;
    lastLogged = Date.now();
    logger.warn({ err: error }, message);
  };
  const redis = createRedisClient(config.redis.url, (error) => logThrottled(error, "redis connection error"));
  const deadline = Date.now() + REDIS_READY_WAIT_MS;
  while (redis.status !== "ready" && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 50));
  if (redis.status !== "ready") {
    logger.warn(
      { fail_mode: config.rateLimitFailMode },
      "redis is not reachable yet; rate limiting follows the fail mode",
    );
  }
  const limiter = new RedisRateLimiter({
    redis,
    keyPrefix: config.redis.keyPrefix,
    failMode: config.rateLimitFailMode,
    timeoutMs: config.rateLimitTimeoutMs,
    onStoreError: (error) => logThrottled(error, "rate-limit store did not answer in time"),
  });
  return { limiter, redis };
}

/**
 * What each kind of process cannot serve without. An API process serves with Redis or NATS
 * away (degraded); a worker consumes nothing without NATS.
 */
function readinessChecks(dependencies: {
  database: DependencyCheck;
  redis: DependencyCheck | undefined;
  nats: DependencyCheck | undefined;
  serves: StewardRoutes;
}): ReadinessChecks {
  const { database, redis, nats, serves } = dependencies;
  const natsRequired = serves === "operations";
  return {
    required: { database, ...(nats && natsRequired ? { nats } : {}) },
    degradable: { ...(redis ? { redis } : {}), ...(nats && !natsRequired ? { nats } : {}) },
  };
}

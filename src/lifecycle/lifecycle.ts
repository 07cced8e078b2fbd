import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import { ConfigError } from "../config.js";
import type { SecretBox } from "../crypto/secret-box.js";
import type { Db } from "../db/database.js";
import type { DutyLeases } from "../db/duty-leases.js";
import type { DeliveryStore } from "../delivery/delivery-store.js";
import type { EventOutbox } from "../delivery/delivery-target.js";
import type { OrganizationService } from "../orgs/organization.service.js";
import { settledBefore } from "../shutdown.js";
import { agentAlertRoutes } from "./agent-alert.routes.js";
import { AgentAlertService } from "./agent-alert.service.js";
import { agentConfigRoutes } from "./agent-config.routes.js";
import { AgentConfigService } from "./agent-config.service.js";
import { AgentDiscovery } from "./agent-discovery.js";
import { AgentHealthService } from "./agent-health.service.js";
import { AgentProcesses } from "./agent-processes.js";
import { agentRegistrationRoutes } from "./agent-registration.routes.js";
import { agentTelemetryRoutes } from "./agent-telemetry.routes.js";
import { logEntriesOf } from "./agent-telemetry.schemas.js";
import { AgentTokens } from "./agent-token.js";
import { agentWebSocketRoutes } from "./agent-ws.routes.js";
import { LifecycleEvents } from "./lifecycle-events.js";
import { LifecycleNats } from "./lifecycle-nats.js";
import { managedAgentRoutes } from "./managed-agent.routes.js";
import { ManagedAgentService } from "./managed-agent.service.js";
import { NatsAccountSeedError, NatsCredentialIssuer } from "./nats-credentials.js";
import { TelemetryStore } from "./telemetry-store.js";

export interface LifecycleDependencies {
  config: Config;
  db: Db;
  secretBox: SecretBox;
  organizations: OrganizationService;
  webhookEvents: EventOutbox;
  deliveries: DeliveryStore;
  wakeDelivery: () => void;
  /** The heartbeat sweep and telemetry retention run on one replica at a time. */
  leases: DutyLeases;
  logger: Logger;
}

/** How often telemetry past its retention is deleted. */
const RETENTION_INTERVAL_MS = 3_600_000;

/**
 * Managed agents, assembled: registry, discovery, config, health, alerts, processes,
 * NATS and the live event stream. `start` begins the background work (scan, watcher,
 * sweeps, NATS listeners); `stop` ends it and stops the agents' processes.
 */
export class Lifecycle {
  readonly agents: ManagedAgentService;
  readonly events = new LifecycleEvents();
  private readonly telemetry: TelemetryStore;
  private readonly alerts: AgentAlertService;
  private readonly configs: AgentConfigService;
  private readonly health: AgentHealthService;
  private readonly discovery: AgentDiscovery;
  private readonly processes: AgentProcesses;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Background tasks under way, which `stop` waits for. */
  private readonly running = new Set<Promise<void>>();
  private stopWatching?: () => void;

  private constructor(
    private readonly deps: LifecycleDependencies,
    /** STEWARD_AGENTS_ORG: where scans at start and by the watcher record agents. */
    private readonly operatorOrganizationId: string,
    natsCredentials: NatsCredentialIssuer | undefined,
    private readonly nats: LifecycleNats | undefined,
  ) {
    const { config, db, logger, webhookEvents } = deps;
    const settings = config.lifecycle;
    const tokens = new AgentTokens(deps.secretBox, settings.agentTokenTtlS);
    this.agents = new ManagedAgentService(db, {
      tokens,
      events: this.events,
      webhookEvents,
      natsCredentials,
      natsCredentialsTtlS: config.nats?.credentialsTtlS ?? 0,
      discoveryTokenTtlS: settings.discoveryTokenTtlS,
      defaultHeartbeatIntervalS: settings.heartbeatIntervalS,
    });
    this.telemetry = new TelemetryStore(db);
    this.alerts = new AgentAlertService(db, this.events, webhookEvents, deps.deliveries, deps.wakeDelivery);
    this.configs = new AgentConfigService(
      db,
      this.agents,
      this.events,
      { organizationId: operatorOrganizationId, variables: settings.agentEnvironment },
      nats,
    );
    this.health = new AgentHealthService(
      db,
      this.agents,
      this.telemetry,
      this.alerts,
      this.events,
      webhookEvents,
      { unhealthyAfter: settings.heartbeatUnhealthyAfter, failedAfter: settings.heartbeatFailedAfter },
      logger,
    );
    this.discovery = new AgentDiscovery(db, this.agents, settings.agentsDir, logger);
    this.processes = new AgentProcesses(
      db,
      this.agents,
      this.configs,
      tokens,
      this.telemetry,
      this.alerts,
      this.events,
      webhookEvents,
      {
        stewardUrl: `http://127.0.0.1:${config.port}`,
        natsUrl: config.nats?.url,
        path: settings.agentPath,
        restartDelayMs: settings.restartDelayMs,
        maxRestarts: settings.maxRestarts,
        stopGraceMs: settings.stopGraceMs,
      },
      logger,
    );
  }

  /** Builds the lifecycle; connects to NATS when configured (failing start-up when it does not answer). */
  static async create(deps: LifecycleDependencies): Promise<Lifecycle> {
    const { agentsOrg } = deps.config.lifecycle;
    const organization = await deps.organizations.findByIdOrName(agentsOrg);
    if (!organization) throw new ConfigError("STEWARD_AGENTS_ORG", `names no organization ("${agentsOrg}")`);
    // Checked before connecting, so a bad seed leaves no connection open.
    const natsCredentials = natsIssuer(deps.config);
    const nats = deps.config.nats
      ? await LifecycleNats.connect(deps.config.nats.url, deps.config.lifecycle.natsQueueGroup, deps.logger)
      : undefined;
    return new Lifecycle(deps, organization.id, natsCredentials, nats);
  }

  /** The authenticated routes under /api/v1. */
  routes(): FastifyPluginAsyncTypebox {
    return async (api) => {
      await api.register(agentAlertRoutes(this.alerts));
      await api.register(agentWebSocketRoutes(this.events, this.configs));
      await api.register(managedAgentRoutes(this.agents, this.discovery, this.processes));
      await api.register(agentConfigRoutes(this.configs, this.events));
      await api.register(agentTelemetryRoutes(this.agents, this.health, this.telemetry));
    };
  }

  /** Routes authenticated by their own credential (a discovery token), under /api/v1. */
  publicRoutes(): FastifyPluginAsyncTypebox {
    return agentRegistrationRoutes(this.agents);
  }

  async start(): Promise<void> {
    const { config, logger } = this.deps;
    const settings = config.lifecycle;
    this.nats?.listen({
      findAgent: (id) => this.agents.findById(id),
      heartbeat: (agent, body) => this.health.heartbeat(agent, body),
      metrics: (agent, body) => this.health.recordMetrics(agent, body),
      logs: (agent, body) => this.health.recordLogs(agent, logEntriesOf(body)),
    });
    const context = { actor: { type: "system" as const, id: "discovery" } };
    await this.discovery.scan(this.operatorOrganizationId, context);
    if (settings.watchAgentsDir)
      this.stopWatching = this.discovery.watch(this.operatorOrganizationId, context);
    this.single(settings.heartbeatSweepMs, "heartbeat sweep", () => this.health.sweep());
    this.single(RETENTION_INTERVAL_MS, "telemetry retention", async () => {
      const cutoff = new Date(Date.now() - settings.telemetryRetentionDays * 86_400_000);
      const removed = await this.telemetry.pruneOlderThan(cutoff);
      if (removed.metrics + removed.logs > 0) logger.info(removed, "old agent telemetry deleted");
    });
  }

  /** Ends the background work (waiting for a sweep under way until `deadline` at most) and stops the agents. */
  async stop(deadline?: AbortSignal): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    await settledBefore(this.running, deadline);
    this.stopWatching?.();
    await this.processes.stopAll();
    await this.nats?.close();
  }

  /** Runs `task` every `ms` on whichever replica holds the duty's lease, never two at once. */
  private single(ms: number, duty: string, task: () => Promise<void>): void {
    this.every(ms, duty, async () => {
      if (await this.deps.leases.hold(duty, ms)) await task();
    });
  }

  /** Runs `task` every `ms`, never two at once, logging (not throwing) its failures. */
  private every(ms: number, name: string, task: () => Promise<void>): void {
    let running: Promise<void> | undefined;
    const timer = setInterval(() => {
      if (running) return;
      running = task()
        .catch((error: unknown) => this.deps.logger.error({ err: error }, `${name} failed`))
        .finally(() => {
          this.running.delete(running as Promise<void>);
          running = undefined;
        });
      this.running.add(running);
    }, ms);
    timer.unref();
    this.timers.push(timer);
  }
}

function natsIssuer(config: Config): NatsCredentialIssuer | undefined {
  const seed = config.nats?.accountSeed;
  if (!seed) return undefined;
  try {
    return new NatsCredentialIssuer(seed);
  } catch (error) {
    if (error instanceof NatsAccountSeedError)
      throw new ConfigError("STEWARD_NATS_ACCOUNT_SEED", error.message);
    throw error;
  }
}

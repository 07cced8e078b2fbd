import { eq } from "drizzle-orm";
import type { Logger } from "pino";
import type { RequestContext } from "../audit/audit.js";
import type { Db } from "../db/database.js";
import { type ManagedAgentRow, managedAgents } from "../db/schema.js";
import type { EventOutbox } from "../delivery/delivery-target.js";
import { AppError } from "../errors.js";
import type { AgentAlertService } from "./agent-alert.service.js";
import type { AgentConfigService } from "./agent-config.service.js";
import type { AgentTokens } from "./agent-token.js";
import { changeState } from "./agent-transitions.js";
import type { LifecycleEvents } from "./lifecycle-events.js";
import type { ManagedAgentService } from "./managed-agent.service.js";
import {
  ProcessAlreadyRunningError,
  type ProcessExit,
  ProcessManager,
  type ProcessSpec,
} from "./process-manager.js";
import type { LogEntry, TelemetryStore } from "./telemetry-store.js";

export interface AgentProcessOptions {
  /** Base URL agents reach Steward's API at. */
  stewardUrl: string;
  natsUrl?: string;
  /** Passed to agents so their command finds its interpreter; nothing else of Steward's environment is. */
  path: string;
  restartDelayMs: number;
  maxRestarts: number;
  stopGraceMs: number;
}

const STEWARD: RequestContext = { actor: { type: "system", id: "steward" } };
/** Output lines are written in batches: a chatty agent costs one insert per flush, not one per line. */
const OUTPUT_FLUSH_MS = 200;

/**
 * Runs discovered agent packages as child processes of this Steward: start, stop and
 * restart on request, their output as logs, crash restarts with backoff, and `failed`
 * once a crash loop exhausts its restarts.
 */
export class AgentProcesses {
  private readonly manager: ProcessManager;
  private readonly organizations = new Map<string, string>();
  private readonly pendingOutput = new Map<string, LogEntry[]>();
  private flushTimer?: NodeJS.Timeout;

  constructor(
    private readonly db: Db,
    private readonly agents: ManagedAgentService,
    private readonly configs: AgentConfigService,
    private readonly tokens: AgentTokens,
    private readonly telemetry: TelemetryStore,
    private readonly alerts: AgentAlertService,
    private readonly events: LifecycleEvents,
    private readonly webhookEvents: EventOutbox,
    private readonly options: AgentProcessOptions,
    private readonly logger: Logger,
  ) {
    this.manager = new ProcessManager({
      restartDelayMs: options.restartDelayMs,
      maxDelayMs: 60_000,
      maxRestarts: options.maxRestarts,
      stableAfterMs: 60_000,
      stopGraceMs: options.stopGraceMs,
      events: {
        started: (agentId, info) => {
          this.log(agentId, "info", `process started (pid ${info.pid})`, {
            pid: info.pid,
            restarts: info.restarts,
          });
          this.announce(agentId, { event: "started", pid: info.pid });
        },
        output: (agentId, stream, line) =>
          this.log(agentId, stream === "stdout" ? "info" : "warn", line, { stream }),
        crashed: (agentId, info) => {
          const restart = info.restartInMs === undefined ? "" : `; restarting in ${info.restartInMs} ms`;
          this.log(agentId, "error", `process exited (${describeExit(info)})${restart}`, {
            code: info.code,
            signal: info.signal,
            restarts: info.restarts,
          });
          this.announce(agentId, { event: "crashed", code: info.code, signal: info.signal });
        },
        gaveUp: (agentId, info) => {
          this.announce(agentId, { event: "gave_up", code: info.code, signal: info.signal });
          this.markFailed(agentId, info).catch((error: unknown) =>
            this.logger.error(
              { err: error, agent_id: agentId },
              "could not mark a crash-looping agent failed",
            ),
          );
        },
        stopped: (agentId, info) => {
          this.log(agentId, "info", `process stopped (${describeExit(info)})`, {
            code: info.code,
            signal: info.signal,
          });
          this.announce(agentId, { event: "stopped", code: info.code, signal: info.signal });
        },
      },
    });
  }

  /** Starts the agent's package and marks it `running`. */
  async start(organizationId: string, agentId: string, context: RequestContext) {
    const row = await this.runnable(organizationId, agentId);
    if (this.manager.status(agentId))
      throw new AppError("CONFLICT", `agent ${agentId} is already running here`);
    await this.markStarted(row, "started by the process manager", context);
    return this.spawn(row);
  }

  /** Stops the process gracefully (SIGTERM, then SIGKILL) and marks the agent `stopped`. */
  async stop(organizationId: string, agentId: string, context: RequestContext) {
    const row = await this.agents.row(this.db, organizationId, agentId);
    const exit = await this.manager.stop(agentId);
    // A failed or stopped agent has nothing to leave: stopping its process is all there is.
    if (row.state === "running")
      await this.setState(row, "stopped", "stopped by the process manager", context);
    return { stopped: exit !== undefined, exit: exit ?? null };
  }

  /** Stops the process if this Steward runs it, leaving the agent's state alone (before a delete). */
  async stopProcess(organizationId: string, agentId: string): Promise<void> {
    await this.agents.row(this.db, organizationId, agentId);
    await this.manager.stop(agentId);
  }

  async restart(organizationId: string, agentId: string, context: RequestContext) {
    const row = await this.runnable(organizationId, agentId);
    await this.manager.stop(agentId);
    await this.markStarted(row, "restarted by the process manager", context);
    return this.spawn(row);
  }

  /** The process as this Steward runs it, or null. */
  status(agentId: string) {
    const status = this.manager.status(agentId);
    if (!status) return null;
    return {
      pid: status.pid,
      started_at: status.startedAt?.toISOString() ?? null,
      restarts: status.restarts,
      state: status.state,
    };
  }

  /** On shutdown: stop every process and record its agent as stopped. */
  async stopAll(): Promise<void> {
    const running = [...this.organizations.entries()].filter(([agentId]) => this.manager.status(agentId));
    await this.manager.stopAll();
    for (const [agentId, organizationId] of running) {
      const row = await this.agents.row(this.db, organizationId, agentId).catch(() => undefined);
      if (row?.state === "running") await this.setState(row, "stopped", "Steward shut down", STEWARD);
    }
    await this.flush();
  }

  private async spawn(row: ManagedAgentRow): Promise<{ pid: number }> {
    this.organizations.set(row.id, row.organizationId);
    try {
      return await this.manager.start(row.id, () => this.specFor(row.organizationId, row.id));
    } catch (error) {
      if (error instanceof ProcessAlreadyRunningError)
        throw new AppError("CONFLICT", `agent ${row.id} is already running here`);
      const current = await this.agents.row(this.db, row.organizationId, row.id);
      await this.setState(current, "failed", `could not start: ${(error as Error).message}`, STEWARD);
      throw new AppError("CONFLICT", `agent ${row.id} could not be started: ${(error as Error).message}`);
    }
  }

  /** The command, folder and environment of one run: a fresh token and the config in force now. */
  private async specFor(organizationId: string, agentId: string): Promise<ProcessSpec> {
    const row = await this.agents.row(this.db, organizationId, agentId);
    const [{ token, expiresAt }, config] = await Promise.all([
      this.tokens.issue(row),
      this.configs.messageFor(row),
    ]);
    const env: Record<string, string> = {
      PATH: this.options.path,
      STEWARD_URL: this.options.stewardUrl,
      STEWARD_AGENT_ID: row.id,
      STEWARD_AGENT_TOKEN: token,
      STEWARD_AGENT_TOKEN_EXPIRES_AT: expiresAt.toISOString(),
      STEWARD_AGENT_CONFIG: JSON.stringify(config.config),
      STEWARD_AGENT_CONFIG_VERSION: String(config.version),
      STEWARD_HEARTBEAT_INTERVAL_S: String(row.heartbeatIntervalS),
      STEWARD_SUBSCRIBED_TOPICS: row.subscribedTopics.join(","),
      STEWARD_FINDINGS_TOPIC: row.findingsTopic,
    };
    if (this.options.natsUrl) env.NATS_URL = withoutUserInfo(this.options.natsUrl);
    const nats = await this.agents.natsCredentialsFor(row);
    if (nats) env.NATS_CREDS = nats.creds;
    for (const [key, value] of Object.entries(config.config))
      env[`AGENT_CONFIG_${key.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`] =
        typeof value === "string" ? value : JSON.stringify(value);
    return { command: row.command as string, cwd: row.packageDir as string, env };
  }

  private async runnable(organizationId: string, agentId: string): Promise<ManagedAgentRow> {
    const row = await this.agents.row(this.db, organizationId, agentId);
    if (!row.command || !row.packageDir)
      throw new AppError(
        "CONFLICT",
        `agent ${agentId} is not a local package with AGENT_COMMAND; it runs elsewhere and reports its own status`,
      );
    return row;
  }

  /** Moves the agent to `to` unless it is there already. */
  private async setState(
    row: ManagedAgentRow,
    to: "running" | "stopped" | "failed",
    reason: string,
    context: RequestContext,
  ) {
    if (row.state === to) return;
    const { event } = await this.db.transaction(async (tx) => {
      const current = await this.agents.row(tx, row.organizationId, row.id, true);
      return changeState(tx, this.webhookEvents, current, to, reason, context);
    });
    this.events.publish(event);
  }

  /**
   * A fresh start: the agent is `running` from now — so missed heartbeats count from
   * now, even when it was already running — and a crash loop behind it is over.
   */
  private async markStarted(row: ManagedAgentRow, reason: string, context: RequestContext) {
    if (row.state === "running") {
      await this.db
        .update(managedAgents)
        .set({ stateChangedAt: new Date() })
        .where(eq(managedAgents.id, row.id));
    } else {
      await this.setState(row, "running", reason, context);
    }
    await this.alerts.resolve(row, ["crash_loop"]);
  }

  private async markFailed(agentId: string, info: ProcessExit & { restarts: number }): Promise<void> {
    const organizationId = this.organizations.get(agentId);
    if (!organizationId) return;
    const reason = `crashed ${info.restarts + 1} times in a row (last: ${describeExit(info)})`;
    const alert = { kind: "crash_loop" as const, rule: null, message: reason, details: { ...info } };
    // One transaction: whoever sees the agent failed finds its alert already there.
    const { row, changed, fired } = await this.db.transaction(async (tx) => {
      const current = await this.agents.row(tx, organizationId, agentId, true);
      // Someone may have stopped it meanwhile; the crash loop is worth an alert either way.
      const changed =
        current.state === "running"
          ? await changeState(tx, this.webhookEvents, current, "failed", reason, STEWARD)
          : undefined;
      const row = changed?.row ?? current;
      return { row, changed, fired: await this.alerts.record(tx, row, alert) };
    });
    if (changed) this.events.publish(changed.event);
    if (fired) this.alerts.announce(row, fired);
  }

  private announce(
    agentId: string,
    event: {
      event: "started" | "crashed" | "gave_up" | "stopped";
      pid?: number;
      code?: number | null;
      signal?: string | null;
    },
  ) {
    const organizationId = this.organizations.get(agentId);
    if (organizationId)
      this.events.publish({ type: "process", agent_id: agentId, organization_id: organizationId, ...event });
  }

  private log(agentId: string, level: LogEntry["level"], message: string, context: Record<string, unknown>) {
    const entries = this.pendingOutput.get(agentId) ?? [];
    entries.push({ level, message, context, loggedAt: new Date() });
    this.pendingOutput.set(agentId, entries);
    this.flushTimer ??= setTimeout(() => {
      this.flush().catch((error: unknown) =>
        this.logger.error({ err: error }, "could not store agent output"),
      );
    }, OUTPUT_FLUSH_MS);
  }

  private async flush(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const batches = [...this.pendingOutput.entries()];
    this.pendingOutput.clear();
    for (const [agentId, entries] of batches) {
      const organizationId = this.organizations.get(agentId);
      if (organizationId) await this.telemetry.recordLogs({ id: agentId, organizationId }, entries);
    }
  }
}

function describeExit(exit: ProcessExit): string {
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}

/**
 * Steward's own NATS login must not reach an agent: it gets the server's address only,
 * and authenticates with its own scoped credentials (NATS_CREDS).
 */
function withoutUserInfo(url: string): string {
  // A comma-separated server list is not one URL: strip `user:pass@` from each.
  return url.replace(/\/\/[^@/,]*@/g, "//");
}

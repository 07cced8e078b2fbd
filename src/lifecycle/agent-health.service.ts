import { and, eq, inArray, sql } from "drizzle-orm";
import type { Logger } from "pino";
import type { RequestContext } from "../audit/audit.js";
import type { Db } from "../db/database.js";
import { type ManagedAgentRow, managedAgents } from "../db/schema.js";
import type { EventOutbox } from "../delivery/delivery-target.js";
import type { AgentAlertService } from "./agent-alert.service.js";
import type { AgentState } from "./agent-states.js";
import { changeState } from "./agent-transitions.js";
import type { LifecycleEventInput, LifecycleEvents } from "./lifecycle-events.js";
import type { ManagedAgentService } from "./managed-agent.service.js";
import type { LogEntry, TelemetryStore } from "./telemetry-store.js";

export interface HeartbeatPolicy {
  /** Beats missed before an agent is `unhealthy`. */
  unhealthyAfter: number;
  /** Beats missed before it is `failed` (with an alert). */
  failedAfter: number;
}

export interface Heartbeat {
  status?: string;
  timestamp?: string;
  uptime?: number;
}

/** The metrics an agent reports; `custom` holds its own named values. */
export interface MetricsReport {
  timestamp?: string;
  events_processed?: number;
  processing_time_ms?: number;
  errors?: number;
  cpu?: number;
  memory?: number;
  custom?: Record<string, number>;
}

const STEWARD: RequestContext = { actor: { type: "system", id: "steward" } };
const BUILT_IN_METRICS = ["events_processed", "processing_time_ms", "errors", "cpu", "memory"] as const;

/**
 * Heartbeats, metrics and logs coming in from managed agents (over HTTP or NATS), the
 * health they add up to, and the sweep that notices beats that stopped coming.
 */
export class AgentHealthService {
  constructor(
    private readonly db: Db,
    private readonly agents: ManagedAgentService,
    private readonly telemetry: TelemetryStore,
    private readonly alerts: AgentAlertService,
    private readonly events: LifecycleEvents,
    private readonly webhookEvents: EventOutbox,
    private readonly policy: HeartbeatPolicy,
    private readonly logger: Logger,
  ) {}

  /**
   * Records a beat. A registered agent's first beat makes it `running`; a beat from an
   * agent failed by silence brings it back.
   */
  async heartbeat(agent: ManagedAgentRow, beat: Heartbeat): Promise<void> {
    if (agent.state === "discovered" || agent.state === "deleted") return;
    // What the beat changed, announced after the beat itself once committed.
    const consequences: LifecycleEventInput[] = [];
    let becameHealthy = false;
    await this.db.transaction(async (tx) => {
      const current = await this.agents.row(tx, agent.organizationId, agent.id, true);
      becameHealthy = current.health !== "healthy";
      await tx
        .update(managedAgents)
        .set({
          lastHeartbeatAt: new Date(),
          lastHeartbeat: {
            status: beat.status ?? null,
            uptime: beat.uptime ?? null,
            timestamp: beat.timestamp ?? null,
          },
          health: "healthy",
        })
        .where(eq(managedAgents.id, agent.id));
      const resume: Partial<Record<AgentState, string>> = {
        registered: "first heartbeat",
        failed: "heartbeat resumed",
      };
      const reason = resume[current.state as AgentState];
      if (reason)
        consequences.push(
          (await changeState(tx, this.webhookEvents, current, "running", reason, STEWARD)).event,
        );
    });
    await this.alerts.resolve(agent, ["missed_heartbeats"]);
    this.events.publish({
      type: "heartbeat",
      agent_id: agent.id,
      organization_id: agent.organizationId,
      status: beat.status ?? null,
      uptime: beat.uptime ?? null,
    });
    for (const event of consequences) this.events.publish(event);
    if (becameHealthy) this.publishHealth(agent, "healthy", 0);
  }

  /** Stores a metrics report and checks the rules that watch metrics. */
  async recordMetrics(agent: ManagedAgentRow, report: MetricsReport): Promise<void> {
    const values: Record<string, number> = { ...report.custom };
    for (const name of BUILT_IN_METRICS) {
      const value = report[name];
      if (value !== undefined) values[name] = value;
    }
    const recordedAt = report.timestamp ? new Date(report.timestamp) : new Date();
    await this.telemetry.recordMetrics(
      agent,
      Number.isNaN(recordedAt.getTime()) ? new Date() : recordedAt,
      values,
    );
    await this.checkMetricRules(agent, values);
  }

  async recordLogs(agent: ManagedAgentRow, entries: LogEntry[]): Promise<void> {
    await this.telemetry.recordLogs(agent, entries);
  }

  /** Health as the dashboard shows it: state, health, the last beat and the latest metrics. */
  async health(organizationId: string, agentId: string) {
    const row = await this.agents.row(this.db, organizationId, agentId);
    const [metrics, openAlerts] = await Promise.all([
      this.telemetry.latestMetrics(organizationId, agentId),
      this.alerts.list(organizationId, { agentId, open: true }, { page: 1, limit: 20, offset: 0 }),
    ]);
    // Running: beats missed since the last one, or since it started running. Failed: since the
    // last beat, which is what failed it when its beats stopped.
    const since =
      row.state === "running"
        ? Math.max(row.lastHeartbeatAt?.getTime() ?? 0, row.stateChangedAt.getTime())
        : row.state === "failed"
          ? row.lastHeartbeatAt?.getTime()
          : undefined;
    const missed = since === undefined ? 0 : Math.floor((Date.now() - since) / 1000 / row.heartbeatIntervalS);
    const uptime = row.lastHeartbeat?.uptime;
    return {
      agent_id: row.id,
      state: row.state,
      health: row.health,
      heartbeat_interval_s: row.heartbeatIntervalS,
      last_heartbeat_at: row.lastHeartbeatAt?.toISOString() ?? null,
      reported_status: typeof row.lastHeartbeat?.status === "string" ? row.lastHeartbeat.status : null,
      uptime_s: typeof uptime === "number" ? uptime : null,
      missed_heartbeats: missed,
      metrics,
      open_alerts: openAlerts.items,
    };
  }

  /**
   * One pass over running agents whose beats are late: `unhealthy` after
   * `unhealthyAfter` missed beats, `failed` with an alert after `failedAfter`, and the
   * organization's missed-heartbeat rules. Safe on several replicas at once: each agent
   * is changed under its row lock, and alerts are unique while open.
   */
  async sweep(): Promise<void> {
    const late = await this.db
      .select({
        agent: managedAgents,
        elapsedS: sql<number>`extract(epoch from now() - greatest(${managedAgents.lastHeartbeatAt}, ${managedAgents.stateChangedAt}))::float8`,
      })
      .from(managedAgents)
      .where(
        and(
          eq(managedAgents.state, "running"),
          sql`greatest(${managedAgents.lastHeartbeatAt}, ${managedAgents.stateChangedAt}) < now() - make_interval(secs => ${managedAgents.heartbeatIntervalS})`,
        ),
      );
    for (const { agent, elapsedS } of late) {
      const missed = Math.floor(elapsedS / agent.heartbeatIntervalS);
      try {
        await this.handleMissed(agent, missed);
      } catch (error) {
        this.logger.error({ err: error, agent_id: agent.id }, "missed-heartbeat check failed");
      }
    }
  }

  private async handleMissed(agent: ManagedAgentRow, missed: number): Promise<void> {
    for (const rule of await this.alerts.rulesFor(agent, "missed_heartbeats")) {
      if (missed >= rule.threshold)
        await this.alerts.fire(agent, {
          kind: "missed_heartbeats",
          rule,
          message: `${missed} heartbeats missed (rule ${rule.name}: ${rule.threshold})`,
          details: {
            missed_heartbeats: missed,
            last_heartbeat_at: agent.lastHeartbeatAt?.toISOString() ?? null,
          },
        });
    }
    if (missed >= this.policy.failedAfter) {
      const changed = await this.db.transaction(async (tx) => {
        const [current] = await tx
          .select()
          .from(managedAgents)
          .where(and(eq(managedAgents.id, agent.id), eq(managedAgents.state, "running")))
          .for("update", { skipLocked: true });
        // Gone, changed or being handled by another replica: nothing to do here.
        if (
          !current ||
          current.lastHeartbeatAt?.getTime() !== agent.lastHeartbeatAt?.getTime() ||
          current.stateChangedAt.getTime() !== agent.stateChangedAt.getTime()
        )
          return undefined;
        await tx.update(managedAgents).set({ health: "unhealthy" }).where(eq(managedAgents.id, agent.id));
        const failed = await changeState(
          tx,
          this.webhookEvents,
          current,
          "failed",
          `missed ${missed} heartbeats`,
          STEWARD,
        );
        // Committed with the state change: a failed agent always has its alert.
        const alert = await this.alerts.record(tx, failed.row, {
          kind: "missed_heartbeats",
          rule: null,
          message: `no heartbeat for ${missed} intervals of ${agent.heartbeatIntervalS} s; the agent is marked failed`,
          details: {
            missed_heartbeats: missed,
            last_heartbeat_at: agent.lastHeartbeatAt?.toISOString() ?? null,
          },
        });
        return { ...failed, alert, wasUnhealthy: current.health === "unhealthy" };
      });
      if (!changed) return;
      if (!changed.wasUnhealthy) this.publishHealth(agent, "unhealthy", missed);
      this.events.publish(changed.event);
      if (changed.alert) this.alerts.announce(changed.row, changed.alert);
      return;
    }
    if (missed >= this.policy.unhealthyAfter && agent.health !== "unhealthy") {
      const [updated] = await this.db
        .update(managedAgents)
        .set({ health: "unhealthy" })
        .where(
          and(
            eq(managedAgents.id, agent.id),
            eq(managedAgents.state, "running"),
            inArray(managedAgents.health, ["unknown", "healthy"]),
            // Unchanged since the sweep read it (to the millisecond a Date holds): a beat
            // or a restart in between wins.
            sql`date_trunc('milliseconds', ${managedAgents.lastHeartbeatAt}) IS NOT DISTINCT FROM ${agent.lastHeartbeatAt}`,
            sql`date_trunc('milliseconds', ${managedAgents.stateChangedAt}) = ${agent.stateChangedAt}`,
          ),
        )
        .returning({ id: managedAgents.id });
      if (updated) this.publishHealth(agent, "unhealthy", missed);
    }
  }

  private publishHealth(agent: ManagedAgentRow, health: "healthy" | "unhealthy", missed: number): void {
    this.events.publish({
      type: "health",
      agent_id: agent.id,
      organization_id: agent.organizationId,
      health,
      missed_heartbeats: missed,
    });
  }

  /** Fires (or clears) the metric and error-rate rules that apply to the agent. */
  private async checkMetricRules(agent: ManagedAgentRow, values: Record<string, number>): Promise<void> {
    for (const rule of await this.alerts.rulesFor(agent, "metric_threshold")) {
      const value = rule.metric ? values[rule.metric] : undefined;
      if (value === undefined) continue;
      if (value > rule.threshold)
        await this.alerts.fire(agent, {
          kind: "metric_threshold",
          rule,
          message: `${rule.metric} = ${value}, above ${rule.threshold} (rule ${rule.name})`,
          details: { metric: rule.metric, value, threshold: rule.threshold },
        });
      else await this.alerts.resolve(agent, ["metric_threshold"], rule.id);
    }
    for (const rule of await this.alerts.rulesFor(agent, "error_rate")) {
      const since = new Date(Date.now() - rule.windowS * 1000);
      const sums = await this.telemetry.metricSums(agent.id, ["errors", "events_processed"], since);
      const processed = sums.events_processed ?? 0;
      if (processed === 0) continue;
      const rate = (sums.errors ?? 0) / processed;
      if (rate > rule.threshold)
        await this.alerts.fire(agent, {
          kind: "error_rate",
          rule,
          message: `error rate ${(rate * 100).toFixed(1)}% over ${rule.windowS} s, above ${rule.threshold * 100}% (rule ${rule.name})`,
          details: { errors: sums.errors ?? 0, events_processed: processed, rate, window_s: rule.windowS },
        });
      else await this.alerts.resolve(agent, ["error_rate"], rule.id);
    }
  }
}

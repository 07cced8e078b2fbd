import { and, asc, desc, eq, inArray, isNotNull, isNull, ne, or, type SQL } from "drizzle-orm";
import { type RequestContext, recordAudit } from "../audit/audit.js";
import type { Db, DbOrTx } from "../db/database.js";
import { isUniqueViolation } from "../db/errors.js";
import { selectPage } from "../db/paginate.js";
import {
  type AgentAlertRow,
  type AgentAlertRuleRow,
  agentAlertRules,
  agentAlerts,
  externalAgents,
  type ManagedAgentRow,
  managedAgents,
} from "../db/schema.js";
import type { DeliveryStore } from "../delivery/delivery-store.js";
import type { EventOutbox } from "../delivery/delivery-target.js";
import { AppError, NotFoundError, ValidationError } from "../errors.js";
import type { Page, PageRequest } from "../http/pagination.js";
import { newId } from "../ids.js";
import type { AgentAlertRuleBody } from "./agent-alert.schemas.js";
import type { LifecycleEvents } from "./lifecycle-events.js";

export type AlertKind = "missed_heartbeats" | "error_rate" | "metric_threshold" | "crash_loop";

export interface AlertInput {
  kind: AlertKind;
  /** The rule that fired; null for Steward's own alerts (heartbeats lost, crash loop). */
  rule: AgentAlertRuleRow | null;
  message: string;
  details: Record<string, unknown>;
}

export function toAlertView(row: AgentAlertRow) {
  return {
    id: row.id,
    agent_id: row.agentId,
    rule_id: row.ruleId,
    kind: row.kind,
    message: row.message,
    details: row.details,
    fired_at: row.firedAt.toISOString(),
    resolved_at: row.resolvedAt?.toISOString() ?? null,
  };
}

export function toRuleView(row: AgentAlertRuleRow) {
  return {
    id: row.id,
    name: row.name,
    enabled: row.enabled,
    agent_id: row.agentId,
    kind: row.kind as AgentAlertRuleBody["kind"],
    metric: row.metric,
    threshold: row.threshold,
    window_s: row.windowS,
    notify_external_agent_id: row.notifyExternalAgentId,
    created_by: row.createdBy,
    created_at: row.createdAt.toISOString(),
  };
}

const RULE_NAME_CONSTRAINT = "agent_alert_rules_organization_name_key";

/**
 * Alerts about managed agents: the organization's rules, the alerts that fired (one
 * open alert per rule and agent), and their announcement — audit, webhook event, live
 * event and, when a rule names one, a message on an external agent's chat platform.
 */
/** An alert recorded by `record`, to announce once its transaction has committed. */
export interface FiredAlert {
  view: ReturnType<typeof toAlertView>;
  /** Notices were queued: the delivery worker has work. */
  notified: boolean;
}

export class AgentAlertService {
  constructor(
    private readonly db: Db,
    private readonly events: LifecycleEvents,
    private readonly webhookEvents: EventOutbox,
    private readonly deliveries: DeliveryStore,
    private readonly wakeDelivery: () => void,
  ) {}

  async createRule(organizationId: string, body: AgentAlertRuleBody, context: RequestContext) {
    if (body.kind === "metric_threshold" && !body.metric)
      throw new ValidationError([{ field: "metric", message: "is required for a metric_threshold rule" }]);
    if (body.kind !== "crash_loop" && body.threshold === undefined)
      throw new ValidationError([{ field: "threshold", message: `is required for a ${body.kind} rule` }]);
    // It fires nothing itself: without a channel it would do nothing at all.
    if (body.kind === "crash_loop" && !body.notify_external_agent_id)
      throw new ValidationError([
        {
          field: "notify_external_agent_id",
          message: "is required for a crash_loop rule, which only routes alerts",
        },
      ]);
    if (body.agent_id) await this.requireManagedAgent(organizationId, body.agent_id);
    if (body.notify_external_agent_id)
      await this.requireChannel(organizationId, body.notify_external_agent_id);
    const id = newId("agentAlertRule");
    try {
      const row = await this.db.transaction(async (tx) => {
        const [inserted] = await tx
          .insert(agentAlertRules)
          .values({
            id,
            organizationId,
            name: body.name,
            enabled: body.enabled ?? true,
            agentId: body.agent_id ?? null,
            kind: body.kind,
            metric: body.metric ?? null,
            threshold: body.threshold ?? 0,
            windowS: body.window_s ?? 300,
            notifyExternalAgentId: body.notify_external_agent_id ?? null,
            createdBy: context.actor.id,
          })
          .returning();
        await recordAudit(tx, context, {
          organizationId,
          action: "agent_alert_rule.created",
          resourceType: "agent_alert_rule",
          resourceId: id,
          details: { name: body.name, kind: body.kind },
        });
        return inserted as AgentAlertRuleRow;
      });
      return toRuleView(row);
    } catch (error) {
      if (isUniqueViolation(error, RULE_NAME_CONSTRAINT))
        throw new AppError("CONFLICT", `an alert rule named "${body.name}" already exists`, {
          field: "name",
        });
      throw error;
    }
  }

  async listRules(organizationId: string, page: PageRequest) {
    const where = eq(agentAlertRules.organizationId, organizationId);
    return selectPage(this.db, agentAlertRules, where, [asc(agentAlertRules.name)], page, toRuleView);
  }

  async deleteRule(organizationId: string, id: string, context: RequestContext): Promise<void> {
    await this.db.transaction(async (tx) => {
      // Alerts keep their history; the rule they came from is forgotten. Its open alerts
      // are resolved: no rule is left to clear them, and two of them without a rule
      // would clash on the one-open-alert-per-kind index.
      const ofRule = and(eq(agentAlerts.ruleId, id), eq(agentAlerts.organizationId, organizationId));
      await tx
        .update(agentAlerts)
        .set({ resolvedAt: new Date() })
        .where(and(ofRule, isNull(agentAlerts.resolvedAt)));
      await tx.update(agentAlerts).set({ ruleId: null }).where(ofRule);
      const [deleted] = await tx
        .delete(agentAlertRules)
        .where(and(eq(agentAlertRules.id, id), eq(agentAlertRules.organizationId, organizationId)))
        .returning({ id: agentAlertRules.id });
      if (!deleted) throw new NotFoundError("alert rule", id);
      await recordAudit(tx, context, {
        organizationId,
        action: "agent_alert_rule.deleted",
        resourceType: "agent_alert_rule",
        resourceId: id,
      });
    });
  }

  /** Alerts of the organization, newest first. */
  async list(
    organizationId: string,
    filters: { agentId?: string; open?: boolean },
    page: PageRequest,
  ): Promise<Page<ReturnType<typeof toAlertView>>> {
    const conditions: SQL[] = [eq(agentAlerts.organizationId, organizationId)];
    if (filters.agentId) conditions.push(eq(agentAlerts.agentId, filters.agentId));
    if (filters.open === true) conditions.push(isNull(agentAlerts.resolvedAt));
    if (filters.open === false) conditions.push(isNotNull(agentAlerts.resolvedAt));
    return selectPage(this.db, agentAlerts, and(...conditions), [desc(agentAlerts.id)], page, toAlertView);
  }

  /** Enabled rules of `kind` that apply to the agent (its own and the organization-wide ones). */
  async rulesFor(
    agent: ManagedAgentRow,
    kind: AlertKind,
    db: DbOrTx = this.db,
  ): Promise<AgentAlertRuleRow[]> {
    return db
      .select()
      .from(agentAlertRules)
      .where(
        and(
          eq(agentAlertRules.organizationId, agent.organizationId),
          eq(agentAlertRules.kind, kind),
          eq(agentAlertRules.enabled, true),
          or(isNull(agentAlertRules.agentId), eq(agentAlertRules.agentId, agent.id)),
        ),
      );
  }

  /**
   * Fires an alert unless the same one is already open. Steward's own alerts are
   * announced on the channels of the organization's rules of the same kind.
   */
  async fire(agent: ManagedAgentRow, alert: AlertInput): Promise<boolean> {
    const fired = await this.db.transaction((tx) => this.record(tx, agent, alert));
    if (!fired) return false;
    this.announce(agent, fired);
    return true;
  }

  /**
   * The database half of firing, in the caller's transaction (so an alert commits with
   * the change that caused it): the alert, its audit event, webhook event and notices.
   * Undefined when the same alert is already open. Call `announce` after the commit.
   */
  async record(tx: DbOrTx, agent: ManagedAgentRow, alert: AlertInput): Promise<FiredAlert | undefined> {
    const channels = alert.rule
      ? [alert.rule.notifyExternalAgentId]
      : (await this.rulesFor(agent, alert.kind, tx)).map((rule) => rule.notifyExternalAgentId);
    const notify = [...new Set(channels.filter((id): id is string => id !== null))];
    const [row] = await tx
      .insert(agentAlerts)
      .values({
        id: newId("agentAlert"),
        organizationId: agent.organizationId,
        agentId: agent.id,
        ruleId: alert.rule?.id ?? null,
        kind: alert.kind,
        message: alert.message,
        details: alert.details,
      })
      .onConflictDoNothing()
      .returning();
    if (!row) return undefined;
    const view = toAlertView(row);
    await recordAudit(
      tx,
      { actor: { type: "system", id: "steward" } },
      {
        organizationId: agent.organizationId,
        action: "managed_agent.alert_fired",
        resourceType: "managed_agent",
        resourceId: agent.id,
        details: { alert_id: row.id, kind: alert.kind, rule_id: row.ruleId },
      },
    );
    await this.webhookEvents.publish(tx, {
      type: "managed_agent.alert",
      organizationId: agent.organizationId,
      data: { ...view, agent_name: agent.name },
    });
    await this.enqueueNotices(tx, agent.organizationId, row.id, notify);
    return { view, notified: notify.length > 0 };
  }

  /** The half of firing that follows the commit: the live event, and the delivery worker woken for notices. */
  announce(agent: Pick<ManagedAgentRow, "id" | "organizationId">, fired: FiredAlert): void {
    this.events.publish({
      type: "alert",
      agent_id: agent.id,
      organization_id: agent.organizationId,
      alert: fired.view,
    });
    if (fired.notified) this.wakeDelivery();
  }

  /** Closes the agent's open alerts of these kinds (the condition has cleared). */
  async resolve(agent: Pick<ManagedAgentRow, "id">, kinds: AlertKind[], ruleId?: string): Promise<void> {
    const conditions: SQL[] = [
      eq(agentAlerts.agentId, agent.id),
      inArray(agentAlerts.kind, kinds),
      isNull(agentAlerts.resolvedAt),
    ];
    if (ruleId !== undefined) conditions.push(eq(agentAlerts.ruleId, ruleId));
    await this.db
      .update(agentAlerts)
      .set({ resolvedAt: new Date() })
      .where(and(...conditions));
  }

  private async enqueueNotices(tx: DbOrTx, organizationId: string, alertId: string, channelIds: string[]) {
    if (channelIds.length === 0) return;
    const channels = await tx
      .select({ id: externalAgents.id, platform: externalAgents.platform })
      .from(externalAgents)
      .where(
        and(
          eq(externalAgents.organizationId, organizationId),
          inArray(externalAgents.id, channelIds),
          ne(externalAgents.status, "deleted"),
        ),
      );
    for (const channel of channels)
      await this.deliveries.enqueueAlertNotice(tx, {
        organizationId,
        externalAgentId: channel.id,
        platform: channel.platform,
        alertId,
      });
  }

  private async requireManagedAgent(organizationId: string, agentId: string) {
    const [row] = await this.db
      .select({ id: managedAgents.id })
      .from(managedAgents)
      .where(
        and(
          eq(managedAgents.id, agentId),
          eq(managedAgents.organizationId, organizationId),
          ne(managedAgents.state, "deleted"),
        ),
      );
    if (!row)
      throw new ValidationError([
        { field: "agent_id", message: `${agentId} is not an agent of this organization` },
      ]);
  }

  private async requireChannel(organizationId: string, externalAgentId: string) {
    const [row] = await this.db
      .select({ id: externalAgents.id })
      .from(externalAgents)
      .where(
        and(
          eq(externalAgents.id, externalAgentId),
          eq(externalAgents.organizationId, organizationId),
          ne(externalAgents.status, "deleted"),
        ),
      );
    if (!row)
      throw new ValidationError([
        {
          field: "notify_external_agent_id",
          message: `${externalAgentId} is not an external agent of this organization`,
        },
      ]);
  }
}

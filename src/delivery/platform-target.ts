import { and, eq } from "drizzle-orm";
import type { ExternalAgentService } from "../agents/agent.service.js";
import type { Platform } from "../agents/agent-kinds.js";
import type { Db } from "../db/database.js";
import {
  agentAlerts,
  approvals,
  type DeliveryRow,
  externalAgents,
  type InvocationRow,
  invocations,
  managedAgents,
} from "../db/schema.js";
import { outputOf } from "../invocation/invocation-response.js";
import { AdapterCache } from "./adapter-cache.js";
import type { AdapterContext, AdapterRegistry, InvocationNotice } from "./adapters/adapter.js";
import type { DeliveryTarget, PreparedDelivery } from "./delivery-target.js";
import { AGENT_STAMP, InvocationReader } from "./invocation-reader.js";

/** The invocation a delivery reports on, within the delivery's organization. */
export async function invocationOf(db: Db, delivery: DeliveryRow): Promise<InvocationRow | undefined> {
  const [invocation] = await db
    .select()
    .from(invocations)
    .where(
      and(
        eq(invocations.organizationId, delivery.organizationId),
        eq(invocations.id, delivery.invocationId ?? ""),
      ),
    );
  return invocation;
}

/** The parts of a message every platform shows, from a final invocation. */
export function noticeOf(row: InvocationRow, publicUrl: string): InvocationNotice {
  return {
    invocationId: row.id,
    agentId: row.externalAgentId,
    agentName: row.agentName,
    status: row.status,
    output: row.status === "success" ? outputOf(row.responseBody) : null,
    error: row.errorMessage,
    durationMs: row.durationMs,
    costUsd: row.costUsd,
    traceId: row.traceId,
    externalUser: row.externalUserEmail ?? row.externalUserId,
    createdAt: row.createdAt,
    completedAt: row.completedAt ?? row.createdAt,
    dashboardUrl: `${publicUrl}/lineage/${row.id}`,
  };
}

/** Delivers an invocation's result to its agent's chat platform, formatted by the platform's adapter. */
export class PlatformDeliveryTarget implements DeliveryTarget {
  private readonly adapters: AdapterCache;
  private readonly invocations: InvocationReader;

  constructor(
    private readonly db: Db,
    agents: ExternalAgentService,
    registry: AdapterRegistry,
    private readonly context: Omit<AdapterContext, "signingSecret">,
  ) {
    this.invocations = new InvocationReader(db);
    this.adapters = new AdapterCache(async (organizationId, agentId) => {
      const agent = await agents.loadForDelivery(organizationId, agentId);
      const definition = registry[agent.row.platform as Platform];
      if (!definition.deliversTo(agent.platformConfig)) return undefined;
      return definition.create(agent.platformConfig, { ...context, signingSecret: agent.signingSecret });
    });
  }

  async prepare(delivery: DeliveryRow): Promise<PreparedDelivery | { skip: string }> {
    const alertId = delivery.payload?.alert_id;
    if (typeof alertId === "string") {
      if (!delivery.externalAgentId) return { skip: "the alert names no channel" };
      const notice = await this.alertNotice(delivery.organizationId, delivery.externalAgentId, alertId);
      if (!notice) return { skip: "the alert no longer exists" };
      return this.formatFor(delivery.organizationId, delivery.externalAgentId, notice);
    }
    const found = await this.invocations.read(delivery.organizationId, delivery.invocationId ?? "");
    if (!found) return { skip: "the invocation no longer exists" };
    const { invocation, agentStamp } = found;
    const approvalId = delivery.payload?.approval_id;
    const notice =
      typeof approvalId === "string"
        ? await this.approvalNotice(invocation, approvalId)
        : noticeOf(invocation, this.context.publicUrl);
    if (!notice) return { skip: "the approval request no longer exists" };
    return this.formatFor(delivery.organizationId, invocation.externalAgentId, notice, agentStamp);
  }

  /**
   * The notice in the channel agent's own platform format. `agentStamp` is the agent's
   * version as read with the notice; without one, the agent is read afresh.
   */
  private async formatFor(
    organizationId: string,
    externalAgentId: string,
    notice: InvocationNotice,
    agentStamp?: string,
  ): Promise<PreparedDelivery | { skip: string }> {
    const stamp = agentStamp ?? (await this.agentStamp(organizationId, externalAgentId));
    const adapter = await this.adapters.adapterFor(organizationId, externalAgentId, stamp);
    if (!adapter) return { skip: "the agent has no delivery destination" };
    return { payload: adapter.format(notice), deliver: adapter.deliver };
  }

  private async agentStamp(organizationId: string, agentId: string): Promise<string> {
    const [agent] = await this.db
      .select({ stamp: AGENT_STAMP })
      .from(externalAgents)
      .where(and(eq(externalAgents.organizationId, organizationId), eq(externalAgents.id, agentId)));
    // A missing agent fails in the loader, as it did before the cache.
    return agent?.stamp ?? "missing";
  }

  /** A managed agent's alert, told in the same message form on the channel agent's platform. */
  private async alertNotice(
    organizationId: string,
    channelAgentId: string,
    alertId: string,
  ): Promise<InvocationNotice | undefined> {
    const [found] = await this.db
      .select({ alert: agentAlerts, agentName: managedAgents.name })
      .from(agentAlerts)
      .innerJoin(managedAgents, eq(managedAgents.id, agentAlerts.agentId))
      .where(and(eq(agentAlerts.organizationId, organizationId), eq(agentAlerts.id, alertId)));
    if (!found) return undefined;
    const { alert, agentName } = found;
    return {
      invocationId: alert.id,
      agentId: channelAgentId,
      agentName,
      status: "alert",
      output: `Alert (${alert.kind}) on managed agent ${agentName}: ${alert.message}`,
      error: null,
      durationMs: null,
      costUsd: null,
      traceId: alert.id,
      externalUser: null,
      createdAt: alert.firedAt,
      completedAt: alert.firedAt,
      dashboardUrl: `${this.context.publicUrl}/managed/${alert.agentId}`,
    };
  }

  /** The same message form, telling approvers a call waits for them and linking to the request. */
  private async approvalNotice(
    invocation: InvocationRow,
    approvalId: string,
  ): Promise<InvocationNotice | undefined> {
    const [approval] = await this.db
      .select()
      .from(approvals)
      .where(and(eq(approvals.organizationId, invocation.organizationId), eq(approvals.id, approvalId)));
    if (!approval) return undefined;
    return {
      ...noticeOf(invocation, this.context.publicUrl),
      status: "pending_approval",
      output: `Approval needed: ${approval.reasons.join("; ")}. Request: ${approval.summary}`,
      dashboardUrl: `${this.context.publicUrl}/approvals/${approval.id}`,
    };
  }
}

import { and, eq, isNull } from "drizzle-orm";
import { type RequestContext, recordAudit } from "../audit/audit.js";
import type { DbOrTx } from "../db/database.js";
import { agentAlerts, type ManagedAgentRow, managedAgents, managedAgentTransitions } from "../db/schema.js";
import type { EventOutbox } from "../delivery/delivery-target.js";
import { AppError } from "../errors.js";
import { type AgentState, allowedTransitions, canTransition } from "./agent-states.js";
import type { LifecycleEventInput } from "./lifecycle-events.js";

/**
 * Moves a (locked) agent row to `to` inside the caller's transaction: the state, the
 * history entry, the audit event and the webhook event commit together. Returns the
 * agent as it now is and the live event to publish once the transaction has committed.
 */
export async function changeState(
  tx: DbOrTx,
  webhookEvents: EventOutbox,
  agent: ManagedAgentRow,
  to: AgentState,
  reason: string | null,
  context: RequestContext,
): Promise<{ row: ManagedAgentRow; event: LifecycleEventInput }> {
  const from = agent.state as AgentState;
  if (!canTransition(from, to)) {
    const allowed = allowedTransitions(from);
    throw new AppError(
      "CONFLICT",
      `agent ${agent.id} cannot go from ${from} to ${to}; allowed: ${allowed.join(", ") || "none"}`,
      { field: "status", current: from, allowed },
    );
  }
  const now = new Date();
  const [row] = await tx
    .update(managedAgents)
    .set({
      state: to,
      stateChangedAt: now,
      updatedAt: now,
      ...(to === "deleted" ? { deletedAt: now } : {}),
      // A stopped agent's last health reading no longer says anything.
      ...(to === "stopped" ? { health: "unknown" } : {}),
    })
    .where(eq(managedAgents.id, agent.id))
    .returning();
  if (!row) throw new Error(`agent ${agent.id} vanished while locked`);
  // Nothing can clear a deleted agent's alerts any more (its token no longer reports).
  if (to === "deleted") {
    await tx
      .update(agentAlerts)
      .set({ resolvedAt: now })
      .where(and(eq(agentAlerts.agentId, agent.id), isNull(agentAlerts.resolvedAt)));
  }
  await recordTransition(tx, agent, from, to, reason, context);
  await webhookEvents.publish(tx, {
    type: "managed_agent.status_changed",
    organizationId: agent.organizationId,
    data: { agent_id: agent.id, name: agent.name, from, to, reason },
  });
  return {
    row,
    event: { type: "status", agent_id: agent.id, organization_id: agent.organizationId, from, to, reason },
  };
}

/** The history entry and audit event of a state change (or of the state an agent was created in). */
export async function recordTransition(
  tx: DbOrTx,
  agent: Pick<ManagedAgentRow, "id" | "organizationId">,
  from: AgentState | null,
  to: AgentState,
  reason: string | null,
  context: RequestContext,
): Promise<void> {
  await tx.insert(managedAgentTransitions).values({
    agentId: agent.id,
    organizationId: agent.organizationId,
    fromState: from,
    toState: to,
    reason,
    actorType: context.actor.type,
    actorId: context.actor.id,
  });
  await recordAudit(tx, context, {
    organizationId: agent.organizationId,
    action: "managed_agent.status_changed",
    resourceType: "managed_agent",
    resourceId: agent.id,
    details: { from, to, reason },
  });
}

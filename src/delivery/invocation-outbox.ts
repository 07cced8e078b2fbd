import type { Platform } from "../agents/agent-kinds.js";
import { maskSecrets } from "../agents/credentials.js";
import type { DbOrTx } from "../db/database.js";
import type { ExternalAgentRow, InvocationRow } from "../db/schema.js";
import type { AdapterRegistry } from "./adapters/adapter.js";
import { callbackUrlOf } from "./callback-target.js";
import type { DeliveryStore } from "./delivery-store.js";
import type { EventOutbox } from "./delivery-target.js";

/** Calls that reached the agent: their result goes to the platform and to subscribers. */
const COMPLETED = new Set(["success", "failure", "timeout"]);

/**
 * What an invocation tells the outside world, queued in the transaction that makes it
 * final — so a crash can never record a call and lose its delivery.
 */
export class InvocationOutbox {
  constructor(
    private readonly store: DeliveryStore,
    private readonly events: EventOutbox,
    private readonly adapters: AdapterRegistry,
    /** Called after the transaction commits, so a worker picks the delivery up at once. */
    readonly wake: () => void,
  ) {}

  /**
   * Asks for a held call's approval on the agent's own platform, when the workflow's
   * `notify` names that platform (e.g. "slack" for a Slack agent) and it has a destination.
   */
  async queueApprovalNotice(
    tx: DbOrTx,
    approval: { id: string; invocationId: string; notify: readonly string[] },
    agent: ExternalAgentRow,
  ): Promise<boolean> {
    const platform = agent.platform as Platform;
    if (
      !approval.notify.includes(platform) ||
      !this.adapters[platform].deliversTo(maskSecrets(agent.platformConfig))
    ) {
      return false;
    }
    await this.store.enqueueApprovalNotice(tx, {
      organizationId: agent.organizationId,
      externalAgentId: agent.id,
      invocationId: approval.invocationId,
      platform,
      approvalId: approval.id,
    });
    return true;
  }

  /**
   * Queues the deliveries of a final invocation; answers the columns the invocation
   * shows, and whether anything was queued (a worker is woken only then).
   */
  async queue(
    tx: DbOrTx,
    invocation: InvocationRow,
    agent: ExternalAgentRow,
  ): Promise<{ columns: Pick<InvocationRow, "webhookDeliveryStatus">; queued: boolean }> {
    let queued = false;
    const { organizationId, externalAgentId, id: invocationId } = invocation;
    if (invocation.status === "rate_limited") {
      const limit = (invocation.governance as { rate_limit?: Record<string, unknown> }).rate_limit ?? {};
      queued = await this.events.publish(tx, {
        type: "external_agent.rate_limit.exceeded",
        organizationId,
        externalAgentId,
        invocationId,
        data: {
          external_agent_id: externalAgentId,
          invocation_id: invocationId,
          window: limit.window,
          limit: limit.limit,
          reset_seconds: limit.reset_seconds,
        },
      });
    }
    // A call that waited for approval tells its requester how it ended, when asked to.
    const held = (invocation.governance as { approval?: { required?: boolean } }).approval?.required === true;
    if (held && callbackUrlOf(invocation.requestBody)) {
      await this.store.enqueueCallback(tx, { organizationId, externalAgentId, invocationId });
      queued = true;
    }
    if (!COMPLETED.has(invocation.status)) return { columns: { webhookDeliveryStatus: null }, queued };
    const published = await this.events.publish(tx, {
      type: "external_agent.invocation.completed",
      organizationId,
      externalAgentId,
      invocationId,
      data: {
        invocation_id: invocationId,
        external_agent_id: externalAgentId,
        status: invocation.status,
        cost_usd: invocation.costUsd,
        duration_ms: invocation.durationMs,
        trace_id: invocation.traceId,
        completed_at: invocation.completedAt?.toISOString() ?? null,
      },
    });
    const platform = agent.platform as Platform;
    // Masked, a sealed destination reads as the string it stands for: configured.
    if (!this.adapters[platform].deliversTo(maskSecrets(agent.platformConfig)))
      return { columns: { webhookDeliveryStatus: null }, queued: queued || published };
    await this.store.enqueuePlatform(tx, { organizationId, externalAgentId, invocationId, platform });
    return { columns: { webhookDeliveryStatus: "pending" }, queued: true };
  }
}

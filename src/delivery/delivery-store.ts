import { and, asc, desc, eq, gte, inArray, lte, ne, type SQL, sql } from "drizzle-orm";
import { recordAudit } from "../audit/audit.js";
import { SYSTEM_ACTOR } from "../auth/api-key.service.js";
import type { Db, DbOrTx } from "../db/database.js";
import { selectRows } from "../db/paginate.js";
import {
  type DeliveryAttemptRow,
  type DeliveryRow,
  deliveries,
  deliveryAttempts,
  deliveryEndpoints,
} from "../db/schema.js";
import { NotFoundError } from "../errors.js";
import type { PageRequest } from "../http/pagination.js";
import { newId } from "../ids.js";

/**
 * A delivery's endpoint — the agent's platform, a webhook subscription, or one call's
 * callback URL — paused and capped as one.
 */
export const ENDPOINT_KEY = sql`CASE target WHEN 'platform' THEN 'agent:' || external_agent_id
  WHEN 'webhook' THEN 'webhook:' || subscription_id ELSE 'callback:' || invocation_id END`;

export function endpointOf(
  delivery: Pick<DeliveryRow, "target" | "externalAgentId" | "subscriptionId" | "invocationId">,
): string {
  if (delivery.target === "platform") return `agent:${delivery.externalAgentId}`;
  if (delivery.target === "webhook") return `webhook:${delivery.subscriptionId}`;
  return `callback:${delivery.invocationId}`;
}

const STREAK_GAP_MS = 3_600_000;

/** This worker's claim on a delivery was taken over (redelivered, or its lease ran out). */
export class StaleClaimError extends Error {
  constructor(deliveryId: string) {
    super(`the claim on delivery ${deliveryId} is no longer held`);
    this.name = "StaleClaimError";
  }
}

export interface DeliveryFilters {
  externalAgentId?: string;
  status?: string;
  platform?: string;
  from?: Date;
  to?: Date;
}

export interface AttemptRecord {
  startedAt: Date;
  durationMs: number;
  statusCode: number | null;
  outcome: "delivered" | "retry" | "failed";
  error: string | null;
  /** For a retry: when the next attempt is due. */
  nextAttemptAt?: Date;
  /** A network error, timeout, 408, 429 or 5xx: the endpoint itself is failing. */
  endpointFailure: boolean;
}

/** The outbox: rows written with the change they report, claimed by workers, and their attempt log. */
export class DeliveryStore {
  constructor(
    private readonly db: Db,
    private readonly leaseMs: number,
  ) {}

  /** Queues an invocation's result for its agent's platform, inside the invocation's transaction. */
  async enqueuePlatform(
    tx: DbOrTx,
    delivery: { organizationId: string; externalAgentId: string; invocationId: string; platform: string },
  ): Promise<void> {
    await tx.insert(deliveries).values({
      id: newId("delivery"),
      target: "platform",
      eventType: "external_agent.invocation.completed",
      ...delivery,
    });
  }

  /** Queues a held call's result for the callback_url its requester gave. */
  async enqueueCallback(
    tx: DbOrTx,
    callback: { organizationId: string; externalAgentId: string; invocationId: string },
  ): Promise<void> {
    await tx.insert(deliveries).values({
      id: newId("delivery"),
      target: "callback",
      eventType: "external_agent.invocation.completed",
      ...callback,
    });
  }

  /** Queues a message to the agent's platform asking for a held call's approval. */
  async enqueueApprovalNotice(
    tx: DbOrTx,
    notice: {
      organizationId: string;
      externalAgentId: string;
      invocationId: string;
      platform: string;
      approvalId: string;
    },
  ): Promise<void> {
    const { approvalId, ...delivery } = notice;
    await tx.insert(deliveries).values({
      id: newId("delivery"),
      target: "platform",
      eventType: "approval.requested",
      payload: { approval_id: approvalId },
      ...delivery,
    });
  }

  /** Queues a managed agent's alert for an external agent's chat platform. */
  async enqueueAlertNotice(
    tx: DbOrTx,
    notice: { organizationId: string; externalAgentId: string; platform: string; alertId: string },
  ): Promise<void> {
    const { alertId, ...delivery } = notice;
    await tx.insert(deliveries).values({
      id: newId("delivery"),
      target: "platform",
      eventType: "managed_agent.alert",
      payload: { alert_id: alertId },
      ...delivery,
    });
  }

  /**
   * Claims up to `limit` due deliveries for this worker, skipping rows other workers
   * hold (SKIP LOCKED) and paused endpoints, and taking no more for one endpoint than
   * `perEndpoint` less what this worker already has in flight there. A row whose
   * worker died is due again once its lease has run out.
   */
  async claim(
    limit: number,
    perEndpoint: number,
    inFlight: ReadonlyMap<string, number>,
  ): Promise<DeliveryRow[]> {
    if (limit <= 0) return [];
    const busy = JSON.stringify(Object.fromEntries(inFlight));
    const result = await this.db.execute<Record<string, unknown>>(sql`
      WITH candidates AS (
        SELECT id, next_attempt_at, ${ENDPOINT_KEY} AS endpoint FROM deliveries
         WHERE ((status IN ('pending', 'failed') AND next_attempt_at <= now())
             OR (status = 'delivering' AND lease_until < now()))
           AND NOT EXISTS (
             SELECT 1 FROM delivery_endpoints e WHERE e.endpoint = ${ENDPOINT_KEY} AND e.paused_at IS NOT NULL)
         ORDER BY next_attempt_at
         LIMIT ${limit * 4}
         FOR UPDATE SKIP LOCKED
      ), ranked AS (
        SELECT id, next_attempt_at, endpoint,
               row_number() OVER (PARTITION BY endpoint ORDER BY next_attempt_at) AS place
          FROM candidates
      )
      UPDATE deliveries SET status = 'delivering', attempts = attempts + 1,
             lease_until = now() + ${`${this.leaseMs} milliseconds`}::interval, updated_at = now()
       WHERE id IN (
         SELECT id FROM ranked
          WHERE place <= ${perEndpoint} - coalesce((${busy}::jsonb ->> endpoint)::int, 0)
          ORDER BY next_attempt_at
          LIMIT ${limit})
      RETURNING id`);
    const ids = result.rows.map((row) => row.id as string);
    if (ids.length === 0) return [];
    return this.db
      .select()
      .from(deliveries)
      .where(inArray(deliveries.id, ids))
      .orderBy(asc(deliveries.nextAttemptAt));
  }

  /**
   * Records one attempt and moves the delivery on: delivered, due again (`failed`), or
   * dead, answering that status. Also keeps the endpoint's failure streak, answering
   * `paused` when this failure pauses it.
   */
  async recordAttempt(
    delivery: DeliveryRow,
    attempt: AttemptRecord,
    pauseAfterMs: number,
    onInvocation: (tx: DbOrTx) => Promise<void>,
  ): Promise<{ paused: boolean; status: "delivered" | "failed" | "dead" }> {
    const status =
      attempt.outcome === "delivered" ? "delivered" : attempt.outcome === "retry" ? "failed" : "dead";
    const endpoint = endpointOf(delivery);
    const { paused } = await this.db.transaction(async (tx) => {
      const [number] = await tx
        .select({ last: sql<number>`coalesce(max(${deliveryAttempts.attempt}), 0)` })
        .from(deliveryAttempts)
        .where(eq(deliveryAttempts.deliveryId, delivery.id));
      await tx.insert(deliveryAttempts).values({
        deliveryId: delivery.id,
        attempt: (number?.last ?? 0) + 1,
        startedAt: attempt.startedAt,
        durationMs: attempt.durationMs,
        statusCode: attempt.statusCode,
        outcome: attempt.outcome,
        error: attempt.error,
      });
      const fenced = await tx
        .update(deliveries)
        .set({
          status,
          leaseUntil: null,
          lastStatusCode: attempt.statusCode,
          lastError: attempt.error,
          updatedAt: new Date(),
          ...(attempt.nextAttemptAt ? { nextAttemptAt: attempt.nextAttemptAt } : {}),
          ...(status === "delivered" ? { deliveredAt: new Date() } : {}),
        })
        // Only the holder of this claim may move the delivery on: a redelivery or a
        // takeover after an expired lease makes a late answer stale.
        .where(
          and(
            eq(deliveries.id, delivery.id),
            eq(deliveries.status, "delivering"),
            eq(deliveries.attempts, delivery.attempts),
          ),
        )
        .returning({ id: deliveries.id });
      if (fenced.length === 0) throw new StaleClaimError(delivery.id);
      await onInvocation(tx);
      if (status === "delivered") {
        await tx.delete(deliveryEndpoints).where(eq(deliveryEndpoints.endpoint, endpoint));
        return { paused: false };
      }
      // A 4xx, or a delivery that cannot be prepared, says nothing about the endpoint's health.
      if (!attempt.endpointFailure) return { paused: false };
      const window = sql`now() - ${`${pauseAfterMs} milliseconds`}::interval`;
      // Failures further apart than this are separate incidents, not one streak.
      const gap = sql`now() - ${`${Math.max(pauseAfterMs, STREAK_GAP_MS)} milliseconds`}::interval`;
      const streak = await tx.execute<{ paused: boolean }>(sql`
        INSERT INTO delivery_endpoints (endpoint, organization_id, failing_since, last_failure_at)
        VALUES (${endpoint}, ${delivery.organizationId}, now(), now())
        ON CONFLICT (endpoint) DO UPDATE
          -- A failure long after the previous one starts a new streak instead of extending it.
          SET failing_since = CASE WHEN delivery_endpoints.last_failure_at < ${gap}
                THEN now() ELSE delivery_endpoints.failing_since END,
              last_failure_at = now(),
              paused_at = CASE
                WHEN delivery_endpoints.paused_at IS NULL
                 AND delivery_endpoints.last_failure_at >= ${gap}
                 AND delivery_endpoints.failing_since < ${window}
                THEN now() ELSE delivery_endpoints.paused_at END
        RETURNING paused_at IS NOT NULL AND paused_at = now() AS paused`);
      const paused = streak.rows[0]?.paused ?? false;
      if (paused) {
        await recordAudit(
          tx,
          { actor: SYSTEM_ACTOR },
          {
            organizationId: delivery.organizationId,
            action: "delivery.endpoint_paused",
            resourceType: delivery.target === "platform" ? "external_agent" : "webhook_subscription",
            resourceId: delivery.target === "platform" ? delivery.externalAgentId : delivery.subscriptionId,
            details: { last_error: attempt.error, last_status_code: attempt.statusCode },
          },
        );
      }
      return { paused };
    });
    return { paused, status };
  }

  async list(organizationId: string, filters: DeliveryFilters, page: PageRequest) {
    const where = this.where(organizationId, filters);
    return selectRows(this.db, deliveries, where, [desc(deliveries.id)], page);
  }

  async get(
    organizationId: string,
    id: string,
  ): Promise<{ delivery: DeliveryRow; attempts: DeliveryAttemptRow[] }> {
    const [delivery] = await this.db
      .select()
      .from(deliveries)
      .where(and(eq(deliveries.organizationId, organizationId), eq(deliveries.id, id)));
    if (!delivery) throw new NotFoundError("delivery", id);
    const attempts = await this.db
      .select()
      .from(deliveryAttempts)
      .where(eq(deliveryAttempts.deliveryId, id))
      .orderBy(asc(deliveryAttempts.attempt));
    return { delivery, attempts };
  }

  /**
   * Puts deliveries back in the queue with a fresh set of attempts, and lifts the pause
   * of their endpoints: someone has looked at it.
   */
  async requeue(organizationId: string, where: SQL | undefined): Promise<number> {
    return this.db.transaction(async (tx) => {
      const requeued = await tx
        .update(deliveries)
        .set({
          status: "pending",
          attempts: 0,
          nextAttemptAt: new Date(),
          leaseUntil: null,
          updatedAt: new Date(),
        })
        .where(and(eq(deliveries.organizationId, organizationId), ne(deliveries.status, "delivering"), where))
        .returning({
          target: deliveries.target,
          externalAgentId: deliveries.externalAgentId,
          subscriptionId: deliveries.subscriptionId,
          invocationId: deliveries.invocationId,
        });
      const endpoints = [...new Set(requeued.map(endpointOf))];
      if (endpoints.length > 0) {
        await tx.delete(deliveryEndpoints).where(inArray(deliveryEndpoints.endpoint, endpoints));
      }
      return requeued.length;
    });
  }

  private where(organizationId: string, filters: DeliveryFilters): SQL | undefined {
    return and(
      eq(deliveries.organizationId, organizationId),
      filters.externalAgentId ? eq(deliveries.externalAgentId, filters.externalAgentId) : undefined,
      filters.status ? eq(deliveries.status, filters.status) : undefined,
      filters.platform ? eq(deliveries.platform, filters.platform) : undefined,
      filters.from ? gte(deliveries.createdAt, filters.from) : undefined,
      filters.to ? lte(deliveries.createdAt, filters.to) : undefined,
    );
  }
}

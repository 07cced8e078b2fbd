import { performance } from "node:perf_hooks";
import { and, asc, desc, eq, gte, inArray, lte, ne, type SQL, sql } from "drizzle-orm";
import type { Db, DbOrTx } from "../db/database.js";
import { selectRows } from "../db/paginate.js";
import {
  type DeliveryAttemptRow,
  type DeliveryRow,
  deliveries,
  deliveryAttempts,
  deliveryEndpoints,
} from "../db/schema.js";
import { TickBatcher } from "../db/tick-batcher.js";
import { NotFoundError } from "../errors.js";
import type { PageRequest } from "../http/pagination.js";
import { newId } from "../ids.js";
import {
  type AttemptRecord,
  type FinishedAttempt,
  type RecordedAttempt,
  recordAttempts,
} from "./attempt-recorder.js";
import { ENDPOINT_KEY, endpointOf } from "./endpoint-key.js";
import { parkPaused, pausedEndpoint, unparkEndpoints, unparkResumed } from "./parked-deliveries.js";

/** This worker's claim on a delivery was taken over (redelivered, or its lease ran out). */
export class StaleClaimError extends Error {
  constructor(deliveryId: string) {
    super(`the claim on delivery ${deliveryId} is no longer held`);
    this.name = "StaleClaimError";
  }
}

/**
 * How often claims look for paused endpoints' deliveries to park while they find none:
 * with some endpoint paused, looking costs a read of up to PARK_SCAN due rows, too much
 * for every claim of a busy worker. While they find some, every claim looks.
 */
const PARK_EVERY_MS = 500;

export interface DeliveryStoreOptions {
  /** Overrides PARK_EVERY_MS (tests look on every claim). */
  parkEveryMs?: number;
}

export interface DeliveryFilters {
  externalAgentId?: string;
  status?: string;
  platform?: string;
  from?: Date;
  to?: Date;
}

/** The outbox: rows written with the change they report, claimed by workers, and their attempt log. */
export class DeliveryStore {
  private readonly attempts: TickBatcher<FinishedAttempt, RecordedAttempt>;
  private readonly parkEveryMs: number;
  /** When a claim last looked for deliveries to park (performance.now()), and whether it parked any. */
  private lastParking = { at: Number.NEGATIVE_INFINITY, parked: 0 };

  constructor(
    private readonly db: Db,
    private readonly leaseMs: number,
    options: DeliveryStoreOptions = {},
  ) {
    this.attempts = new TickBatcher((batch) => recordAttempts(db, batch));
    this.parkEveryMs = options.parkEveryMs ?? PARK_EVERY_MS;
  }

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
   * hold (SKIP LOCKED), paused endpoints and endpoints this worker already has
   * `perEndpoint` deliveries in flight to, and taking no more for one endpoint than
   * `perEndpoint` less what it has there. A row whose worker died is due again once its
   * lease has run out. Due rows and expired leases are looked up apart, each along its
   * own index, so a claim costs the rows it looks at rather than the whole backlog.
   * Paused endpoints' due rows are parked first (see parkPaused), or they would sit at
   * the front of the due index and every claim would read through them.
   */
  async claim(
    limit: number,
    perEndpoint: number,
    inFlight: ReadonlyMap<string, number>,
  ): Promise<DeliveryRow[]> {
    if (limit <= 0) return [];
    const busy = sql`${JSON.stringify(Object.fromEntries(inFlight))}::jsonb`;
    // Paused endpoints wait; endpoints already at their cap here would only crowd out the others.
    const open = sql`NOT ${pausedEndpoint(ENDPOINT_KEY)}
      AND coalesce((${busy} ->> ${ENDPOINT_KEY})::int, 0) < ${perEndpoint}`;
    const window = limit * 2;
    const claimed = await this.db.transaction(async (tx) => {
      // Planner settings for this claim only. Walking the due index in order stops after
      // `window` rows; a bitmap scan would read and sort the whole backlog, and the planner
      // picks it whenever its statistics predate a burst (a 1% backlog in a large table
      // does not trigger autoanalyze). And a claim need not wait for its WAL flush: the
      // attempt it leads to is recorded with a synchronous commit, which flushes the claim
      // too, and a claim lost in a database crash leaves the row due, to be sent again as
      // any interrupted attempt is.
      await tx.execute(
        sql`SELECT set_config('enable_bitmapscan', 'off', true), set_config('synchronous_commit', 'off', true)`,
      );
      const now = performance.now();
      if (this.lastParking.parked > 0 || now - this.lastParking.at >= this.parkEveryMs) {
        this.lastParking = { at: now, parked: await parkPaused(tx) };
      }
      return tx
        .update(deliveries)
        .set({
          status: "delivering",
          attempts: sql`${deliveries.attempts} + 1`,
          leaseUntil: sql`now() + ${`${this.leaseMs} milliseconds`}::interval`,
          updatedAt: sql`now()`,
        })
        .where(sql`${deliveries.id} IN (
          WITH due AS (
            SELECT id, next_attempt_at, ${ENDPOINT_KEY} AS endpoint FROM deliveries
             WHERE status IN ('pending', 'failed') AND NOT parked AND next_attempt_at <= now() AND ${open}
             ORDER BY next_attempt_at
             LIMIT ${window}
             FOR UPDATE SKIP LOCKED
          ), expired AS (
            SELECT id, next_attempt_at, ${ENDPOINT_KEY} AS endpoint FROM deliveries
             WHERE status = 'delivering' AND lease_until < now() AND ${open}
             ORDER BY lease_until
             LIMIT ${window}
             FOR UPDATE SKIP LOCKED
          ), ranked AS (
            SELECT id, next_attempt_at, endpoint,
                   row_number() OVER (PARTITION BY endpoint ORDER BY next_attempt_at) AS place
              FROM (SELECT * FROM due UNION ALL SELECT * FROM expired) AS candidates
          )
          SELECT id FROM ranked
           WHERE place <= ${perEndpoint} - coalesce((${busy} ->> endpoint)::int, 0)
           ORDER BY next_attempt_at
           LIMIT ${limit})`)
        .returning();
    });
    return claimed.sort((a, b) => a.nextAttemptAt.getTime() - b.nextAttemptAt.getTime());
  }

  /**
   * Records one attempt and moves the delivery on: delivered, due again (`failed`), or
   * dead, answering that status, and whether this failure paused its endpoint. Attempts
   * finishing together are written together, in one transaction (see recordAttempts).
   * Throws StaleClaimError when the claim was taken over meanwhile.
   */
  async recordAttempt(
    delivery: DeliveryRow,
    attempt: AttemptRecord,
    pauseAfterMs: number,
  ): Promise<{ paused: boolean; status: "delivered" | "failed" | "dead" }> {
    const recorded = await this.attempts.submit({ delivery, attempt, pauseAfterMs });
    if (recorded.stale) throw new StaleClaimError(delivery.id);
    return { paused: recorded.paused, status: recorded.status };
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
   * of their endpoints: someone has looked at it. The endpoints' parked deliveries are
   * due again too.
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
          parked: false,
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
        // A statement of its own, after the pause is gone: it sees rows a claim parked and
        // committed meanwhile. Rows a claim parks after it are unparked by unparkResumed.
        await unparkEndpoints(tx, endpoints);
      }
      return requeued.length;
    });
  }

  /**
   * Puts back in the queue the parked deliveries of endpoints no longer paused: lifted
   * by a success, or while a claim was parking their rows. Answers how many.
   */
  unparkResumed(): Promise<number> {
    return unparkResumed(this.db);
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

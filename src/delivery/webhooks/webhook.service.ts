import { and, desc, eq, inArray, type SQL } from "drizzle-orm";
import { type DestinationCheck, destinationErrors } from "../../agents/agent-definition.js";
import { httpUrlProblem } from "../../agents/http-url.js";
import { type RequestContext, recordAudit } from "../../audit/audit.js";
import { TtlCache } from "../../cache/ttl-cache.js";
import type { SecretBox } from "../../crypto/secret-box.js";
import type { Db, DbOrTx } from "../../db/database.js";
import { selectRows } from "../../db/paginate.js";
import { deliveries, deliveryEndpoints, webhookSubscriptions } from "../../db/schema.js";
import { type FieldError, NotFoundError, ValidationError } from "../../errors.js";
import { type Page, type PageRequest, toPage } from "../../http/pagination.js";
import { newId } from "../../ids.js";
import { webhookEndpoint } from "../endpoint-key.js";
import {
  type CreateWebhookBody,
  DEFAULT_OVERLAP_SECONDS,
  type RotateSecretBody,
  type UpdateWebhookBody,
  type WebhookSubscription,
} from "./webhook.schemas.js";
import type { ActiveSubscription, ActiveSubscriptionSource } from "./webhook-outbox.js";
import { newWebhookSecret, sealWebhookSecret } from "./webhook-secret.js";
import { toWebhookView } from "./webhook-view.js";

export interface WebhookServiceOptions {
  /** How long an organization's active subscriptions are cached for publishing (default 2000 ms). */
  cacheTtlMs?: number;
  /** Milliseconds since the epoch; passed in so rotation tests need no sleeping. */
  now?: () => number;
}

/** Deliveries not yet sent; a deleted subscription's are cancelled (`delivering` ones end in the target). */
const UNSENT_STATUSES = ["pending", "failed"];

async function urlErrors(destinations: DestinationCheck, url: string): Promise<FieldError[]> {
  const problem = httpUrlProblem(url);
  if (problem !== null) return [{ field: "url", message: problem }];
  return destinationErrors(destinations, [{ field: "url", url }]);
}

function readActive(db: DbOrTx, organizationId: string): Promise<ActiveSubscription[]> {
  return db
    .select({ id: webhookSubscriptions.id, events: webhookSubscriptions.events })
    .from(webhookSubscriptions)
    .where(
      and(eq(webhookSubscriptions.organizationId, organizationId), eq(webhookSubscriptions.active, true)),
    )
    .execute();
}

/** Organization webhook subscriptions: CRUD and secret rotation, scoped to one organization. */
export class WebhookService implements ActiveSubscriptionSource {
  private readonly cache: TtlCache<readonly ActiveSubscription[]>;
  private readonly now: () => number;

  constructor(
    private readonly db: Db,
    private readonly box: SecretBox,
    private readonly destinations: DestinationCheck,
    options: WebhookServiceOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.cache = new TtlCache(options.cacheTtlMs ?? 2000, this.now);
  }

  /** Creates a subscription; the answer is the only one that carries its secret in full. */
  async create(
    organizationId: string,
    body: CreateWebhookBody,
    context: RequestContext,
  ): Promise<WebhookSubscription> {
    const errors = await urlErrors(this.destinations, body.url);
    if (errors.length > 0) throw new ValidationError(errors);
    const id = newId("webhookSubscription");
    const secret = newWebhookSecret();
    const row = await this.db.transaction(async (tx) => {
      const [inserted] = await tx
        .insert(webhookSubscriptions)
        .values({
          id,
          organizationId,
          url: body.url,
          events: body.events,
          description: body.description ?? null,
          secret: { ...sealWebhookSecret(this.box, id, secret) },
          active: body.active ?? true,
          createdBy: context.actor.id,
        })
        .returning();
      if (!inserted) throw new Error("insert returned no row");
      await recordAudit(tx, context, {
        organizationId,
        action: "webhook.created",
        resourceType: "webhook_subscription",
        resourceId: id,
        // Not the URL: receivers often carry a token in it.
        details: { events: inserted.events, active: inserted.active },
      });
      return inserted;
    });
    this.cache.invalidate(organizationId);
    return toWebhookView(row, this.now(), secret);
  }

  /** Newest first. */
  async list(
    organizationId: string,
    filters: { active?: boolean },
    page: PageRequest,
  ): Promise<Page<WebhookSubscription>> {
    const conditions: SQL[] = [eq(webhookSubscriptions.organizationId, organizationId)];
    if (filters.active !== undefined) conditions.push(eq(webhookSubscriptions.active, filters.active));
    const where = and(...conditions);
    const { rows, total } = await selectRows(
      this.db,
      webhookSubscriptions,
      where,
      [desc(webhookSubscriptions.id)],
      page,
    );
    const now = this.now();
    return toPage(
      rows.map((row) => toWebhookView(row, now)),
      total,
      page,
    );
  }

  async get(organizationId: string, id: string): Promise<WebhookSubscription> {
    const [row] = await this.db
      .select()
      .from(webhookSubscriptions)
      .where(and(eq(webhookSubscriptions.id, id), eq(webhookSubscriptions.organizationId, organizationId)));
    if (!row) throw new NotFoundError("webhook subscription", id);
    return toWebhookView(row, this.now());
  }

  async update(
    organizationId: string,
    id: string,
    patch: UpdateWebhookBody,
    context: RequestContext,
  ): Promise<WebhookSubscription> {
    if (patch.url !== undefined) {
      const errors = await urlErrors(this.destinations, patch.url);
      if (errors.length > 0) throw new ValidationError(errors);
    }
    const row = await this.db.transaction(async (tx) => {
      const [updated] = await tx
        .update(webhookSubscriptions)
        .set({
          ...(patch.url !== undefined ? { url: patch.url } : {}),
          ...(patch.events !== undefined ? { events: patch.events } : {}),
          ...(patch.description !== undefined ? { description: patch.description } : {}),
          ...(patch.active !== undefined ? { active: patch.active } : {}),
          updatedAt: new Date(this.now()),
        })
        .where(and(eq(webhookSubscriptions.id, id), eq(webhookSubscriptions.organizationId, organizationId)))
        .returning();
      if (!updated) throw new NotFoundError("webhook subscription", id);
      await recordAudit(tx, context, {
        organizationId,
        action: "webhook.updated",
        resourceType: "webhook_subscription",
        resourceId: id,
        details: { fields: Object.keys(patch).sort() },
      });
      return updated;
    });
    this.cache.invalidate(organizationId);
    return toWebhookView(row, this.now());
  }

  /**
   * Hard delete; the audit log keeps the record. `deliveries.subscription_id` references
   * the row, so its deliveries are let go of first: unsent ones are cancelled (dead,
   * naming the subscription in last_error), and every one loses its subscription_id. One
   * being sent right now finishes its attempt; a retry of it is skipped by the target.
   */
  async delete(organizationId: string, id: string, context: RequestContext): Promise<void> {
    await this.db.transaction(async (tx) => {
      // Taken first, so an outbox insert running now either completes before us (and its
      // rows are cancelled below) or waits and then leaves this subscription out.
      const [current] = await tx
        .select({ id: webhookSubscriptions.id })
        .from(webhookSubscriptions)
        .where(and(eq(webhookSubscriptions.id, id), eq(webhookSubscriptions.organizationId, organizationId)))
        .for("update");
      if (!current) throw new NotFoundError("webhook subscription", id);
      const cancelled = await tx
        .update(deliveries)
        .set({
          status: "dead",
          subscriptionId: null,
          lastError: `webhook subscription ${id} was deleted`,
          updatedAt: new Date(),
          parked: false,
        })
        .where(and(eq(deliveries.subscriptionId, id), inArray(deliveries.status, UNSENT_STATUSES)))
        .returning({ id: deliveries.id });
      await tx.update(deliveries).set({ subscriptionId: null }).where(eq(deliveries.subscriptionId, id));
      await tx.delete(webhookSubscriptions).where(eq(webhookSubscriptions.id, id));
      // A pause of an endpoint that is gone would never be lifted, and would keep the
      // claims looking for deliveries to park.
      await tx.delete(deliveryEndpoints).where(eq(deliveryEndpoints.endpoint, webhookEndpoint(id)));
      await recordAudit(tx, context, {
        organizationId,
        action: "webhook.deleted",
        resourceType: "webhook_subscription",
        resourceId: id,
        details: { cancelled_deliveries: cancelled.length },
      });
    });
    this.cache.invalidate(organizationId);
  }

  /**
   * Replaces the secret. For `overlap_seconds` the previous one keeps signing beside it,
   * so receivers can switch without losing a delivery; rotating again during an overlap
   * ends the older secret's at once (at most two secrets sign).
   */
  async rotateSecret(
    organizationId: string,
    id: string,
    body: RotateSecretBody,
    context: RequestContext,
  ): Promise<WebhookSubscription> {
    const overlapSeconds = body.overlap_seconds ?? DEFAULT_OVERLAP_SECONDS;
    const secret = newWebhookSecret();
    const now = this.now();
    const row = await this.db.transaction(async (tx) => {
      const [current] = await tx
        .select({ secret: webhookSubscriptions.secret })
        .from(webhookSubscriptions)
        .where(and(eq(webhookSubscriptions.id, id), eq(webhookSubscriptions.organizationId, organizationId)))
        .for("no key update");
      if (!current) throw new NotFoundError("webhook subscription", id);
      const overlap = overlapSeconds > 0;
      const [updated] = await tx
        .update(webhookSubscriptions)
        .set({
          secret: { ...sealWebhookSecret(this.box, id, secret) },
          // Same subscription, same sealing context: the sealed value moves as it is.
          previousSecret: overlap ? current.secret : null,
          previousSecretUntil: overlap ? new Date(now + overlapSeconds * 1000) : null,
          updatedAt: new Date(now),
        })
        .where(eq(webhookSubscriptions.id, id))
        .returning();
      if (!updated) throw new Error("update returned no row");
      await recordAudit(tx, context, {
        organizationId,
        action: "webhook.secret_rotated",
        resourceType: "webhook_subscription",
        resourceId: id,
        details: {
          overlap_seconds: overlapSeconds,
          previous_secret_expires_at: updated.previousSecretUntil?.toISOString() ?? null,
        },
      });
      return updated;
    });
    return toWebhookView(row, now, secret);
  }

  /**
   * What the outbox publishes to. Cached for the TTL: this process's writes show at once,
   * other replicas' within the TTL (the outbox re-checks each subscription as it inserts).
   */
  async activeSubscriptions(db: DbOrTx, organizationId: string): Promise<readonly ActiveSubscription[]> {
    try {
      return await this.cache.get(organizationId, () => readActive(db, organizationId));
    } catch {
      // A shared load runs in the transaction of whoever missed first, which can fail
      // for reasons of its own; this caller reads again in its own transaction.
      return readActive(db, organizationId);
    }
  }
}

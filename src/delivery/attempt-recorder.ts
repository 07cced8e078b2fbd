import { sql } from "drizzle-orm";
import { recordAudit } from "../audit/audit.js";
import { SYSTEM_ACTOR } from "../auth/api-key.service.js";
import type { Db, DbOrTx } from "../db/database.js";
import type { DeliveryRow } from "../db/schema.js";
import { ENDPOINT_KEY, endpointOf } from "./endpoint-key.js";

/** Failures further apart than this are separate incidents, not one streak. */
const STREAK_GAP_MS = 3_600_000;

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

/** One finished attempt of a claimed delivery, waiting to be written. */
export interface FinishedAttempt {
  delivery: DeliveryRow;
  attempt: AttemptRecord;
  pauseAfterMs: number;
}

/**
 * Where the delivery stands once its attempt is written; `stale` when the claim was
 * taken over meanwhile (redelivered, or its lease ran out) and the attempt was dropped.
 */
export type RecordedAttempt =
  | { stale: false; status: "delivered" | "failed" | "dead"; paused: boolean }
  | { stale: true };

function statusOf(attempt: AttemptRecord): "delivered" | "failed" | "dead" {
  if (attempt.outcome === "delivered") return "delivered";
  return attempt.outcome === "retry" ? "failed" : "dead";
}

/**
 * Writes a batch of finished attempts in one transaction: each delivery moves on
 * (delivered, due again, or dead) if this worker still holds its claim, its attempt is
 * logged, its invocation shows the platform delivery's state, and the endpoints' health
 * is kept. Answers one result per attempt, in order.
 */
export async function recordAttempts(db: Db, batch: readonly FinishedAttempt[]): Promise<RecordedAttempt[]> {
  const answer = (fenced: Set<string>, paused = new Set<string>()) =>
    batch.map(({ delivery, attempt }): RecordedAttempt => {
      if (!fenced.has(delivery.id)) return { stale: true };
      return { stale: false, status: statusOf(attempt), paused: paused.has(delivery.id) };
    });
  // The usual batch, with no endpoint failing, is one statement: its own transaction.
  if (!batch.some(({ attempt }) => attempt.endpointFailure)) return answer(await moveOn(db, batch));
  return db.transaction(async (tx) => {
    const fenced = await moveOn(tx, batch);
    const paused = await keepEndpointHealth(
      tx,
      batch.filter((finished) => fenced.has(finished.delivery.id)),
    );
    return answer(fenced, paused);
  });
}

/**
 * One statement for the whole batch: the fenced update of each delivery (only the holder
 * of the claim — same status and attempt count as when claimed — may move it on), its
 * attempt log entry, its invocation's delivery columns, and the end of a failure streak
 * for endpoints that took a delivery. Answers the ids it moved on.
 */
async function moveOn(tx: DbOrTx, batch: readonly FinishedAttempt[]): Promise<Set<string>> {
  // One array per column: the statement's text is the same whatever the batch's size.
  const column = <T>(value: (finished: FinishedAttempt) => T) => sql.param(batch.map(value));
  const moved = await tx.execute<{ id: string }>(sql`
    WITH outcome (id, attempts, status, status_code, error, next_attempt_at, started_at, duration_ms, result) AS (
      SELECT * FROM unnest(
        ${column(({ delivery }) => delivery.id)}::text[],
        ${column(({ delivery }) => delivery.attempts)}::int[],
        ${column(({ attempt }) => statusOf(attempt))}::text[],
        ${column(({ attempt }) => attempt.statusCode)}::int[],
        ${column(({ attempt }) => attempt.error)}::text[],
        ${column(({ attempt }) => attempt.nextAttemptAt?.toISOString() ?? null)}::timestamptz[],
        ${column(({ attempt }) => attempt.startedAt.toISOString())}::timestamptz[],
        ${column(({ attempt }) => attempt.durationMs)}::int[],
        ${column(({ attempt }) => attempt.outcome)}::text[])
    ), fenced AS (
      UPDATE deliveries d
         SET status = o.status, lease_until = NULL, last_status_code = o.status_code, last_error = o.error,
             updated_at = now(), next_attempt_at = coalesce(o.next_attempt_at, d.next_attempt_at),
             delivered_at = CASE WHEN o.status = 'delivered' THEN now() ELSE d.delivered_at END
        FROM outcome o
       WHERE d.id = o.id AND d.status = 'delivering' AND d.attempts = o.attempts
      RETURNING d.id, d.target, d.event_type, d.invocation_id, ${ENDPOINT_KEY} AS endpoint
    ), logged AS (
      -- Numbered after the log's last entry: a redelivery starts its attempts afresh but keeps the log.
      INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, status_code, outcome, error)
      SELECT o.id,
             coalesce((SELECT max(a.attempt) FROM delivery_attempts a WHERE a.delivery_id = o.id), 0) + 1,
             o.started_at, o.duration_ms, o.status_code, o.result, o.error
        FROM outcome o JOIN fenced f ON f.id = o.id
    ), shown AS (
      -- A platform delivery's state shows on its invocation (not a subscriber's or a callback's).
      UPDATE invocations i
         SET webhook_delivery_status = o.status,
             webhook_delivery_error = CASE WHEN o.status = 'delivered' THEN NULL ELSE o.error END,
             webhook_delivered_at = CASE WHEN o.status = 'delivered' THEN now() ELSE i.webhook_delivered_at END
        FROM outcome o JOIN fenced f ON f.id = o.id
       WHERE f.target = 'platform' AND f.event_type = 'external_agent.invocation.completed'
         AND i.id = f.invocation_id
    ), healthy AS (
      DELETE FROM delivery_endpoints
       WHERE endpoint IN (SELECT f.endpoint FROM fenced f JOIN outcome o ON o.id = f.id WHERE o.status = 'delivered')
    )
    SELECT id FROM fenced`);
  return new Set(moved.rows.map((row) => row.id));
}

/**
 * Extends the failure streak of each endpoint whose last attempt in the batch says it
 * is unwell, pausing it (with an audit event) once the streak is long enough. A success
 * later in the batch already ended the streak; one earlier ended it before this failure.
 * Answers the deliveries whose failure paused their endpoint.
 */
async function keepEndpointHealth(tx: DbOrTx, fenced: readonly FinishedAttempt[]): Promise<Set<string>> {
  const last = new Map<string, FinishedAttempt>();
  for (const finished of fenced) last.set(endpointOf(finished.delivery), finished);
  const paused = new Set<string>();
  for (const [endpoint, { delivery, attempt, pauseAfterMs }] of last) {
    // A 4xx, or a delivery that cannot be prepared, says nothing about the endpoint's health.
    if (!attempt.endpointFailure) continue;
    const window = sql`now() - ${`${pauseAfterMs} milliseconds`}::interval`;
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
    if (!streak.rows[0]?.paused) continue;
    paused.add(delivery.id);
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
  return paused;
}

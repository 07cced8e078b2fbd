import { type SQL, sql } from "drizzle-orm";
import type { DbOrTx } from "../db/database.js";
import { ENDPOINT_KEY } from "./endpoint-key.js";

/**
 * Due rows a claim looks through, at most, for deliveries of paused endpoints to park.
 * Parking writes every row it parks (about 20 µs a row), so a claim that finds a large
 * paused backlog takes a few thousand of it and the claims after it take the rest.
 */
export const PARK_SCAN = 5_000;

/** Rows the release puts back per statement; it goes on until fewer are left. */
const RELEASE_BATCH = 10_000;

/** Whether the endpoint named by `endpoint` (an SQL expression) is paused now. */
export const pausedEndpoint = (endpoint: SQL) => sql`EXISTS (
  SELECT 1 FROM delivery_endpoints e WHERE e.endpoint = ${endpoint} AND e.paused_at IS NOT NULL)`;

/**
 * Parks the deliveries of paused endpoints among the first `scan` due rows, taking them
 * out of the due index the claims walk (their status stays pending or failed). Rows
 * other transactions hold are skipped, to be parked by a later claim. With no endpoint
 * paused, the due index is not read at all. Answers how many rows it parked.
 */
export async function parkPaused(tx: DbOrTx, scan = PARK_SCAN): Promise<number> {
  // The scan is bounded before the paused filter, and only the rows the filter keeps are
  // locked and written: locking every row scanned would write to all of them.
  const parked = await tx.execute(sql`
    UPDATE deliveries SET parked = true
     WHERE id IN (
       SELECT d.id
         FROM (SELECT id, ${ENDPOINT_KEY} AS endpoint FROM deliveries
                WHERE status IN ('pending', 'failed') AND NOT parked AND next_attempt_at <= now()
                  AND EXISTS (SELECT 1 FROM delivery_endpoints WHERE paused_at IS NOT NULL)
                ORDER BY next_attempt_at
                LIMIT ${scan}) AS scanned
         JOIN deliveries d ON d.id = scanned.id
        WHERE ${pausedEndpoint(sql`scanned.endpoint`)}
          -- Checked again on the row as it is when locked: a claim may have taken it meanwhile.
          AND d.status IN ('pending', 'failed') AND NOT d.parked
          FOR UPDATE OF d SKIP LOCKED)`);
  return parked.rowCount ?? 0;
}

/** Puts the parked deliveries of `endpoints` back in the due queue. */
export async function unparkEndpoints(tx: DbOrTx, endpoints: readonly string[]): Promise<void> {
  if (endpoints.length === 0) return;
  await tx.execute(sql`
    UPDATE deliveries SET parked = false
     WHERE parked AND ${ENDPOINT_KEY} = ANY (${sql.param(endpoints)}::text[])`);
}

/**
 * Puts back in the due queue every parked delivery whose endpoint is no longer paused:
 * the pause was lifted by a success, or a claim parked rows of an endpoint whose pause
 * was being lifted at that moment. Reads every parked row, in batches; rows another
 * transaction holds (a redelivery, say) are left to it or to the next pass, so the
 * release never waits on, or deadlocks with, one. Answers how many it unparked.
 */
export async function unparkResumed(tx: DbOrTx): Promise<number> {
  let total = 0;
  for (;;) {
    const unparked = await tx.execute(sql`
      UPDATE deliveries SET parked = false
       WHERE id IN (
         SELECT id FROM deliveries
          WHERE parked AND NOT ${pausedEndpoint(ENDPOINT_KEY)}
          LIMIT ${RELEASE_BATCH}
          FOR UPDATE SKIP LOCKED)`);
    const count = unparked.rowCount ?? 0;
    total += count;
    if (count < RELEASE_BATCH) return total;
  }
}

import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Database } from "../../src/db/database.js";
import type { DeliveryRow } from "../../src/db/schema.js";
import type { AttemptRecord } from "../../src/delivery/attempt-recorder.js";
import { DeliveryStore, StaleClaimError } from "../../src/delivery/delivery-store.js";
import { DELIVERED } from "../helpers/attempts.js";
import { openTestDatabase } from "../helpers/schema.js";

const LEASE_MS = 60_000;
const HOUR_MS = 3_600_000;

/**
 * The outbox's claims and its batched attempt log: deliveries claimed or finishing
 * together share statements, and each still ends as it would have alone.
 */
describe("delivery store", () => {
  let database: Database;
  let store: DeliveryStore;

  beforeAll(async () => {
    database = await openTestDatabase();
    store = new DeliveryStore(database.db, LEASE_MS);
  });
  afterAll(async () => {
    await database?.close();
  });
  // Each test starts with an empty outbox, so a claim sees only its own rows.
  beforeEach(async () => {
    await database.pool.query(
      "TRUNCATE delivery_attempts, deliveries, delivery_endpoints, audit_events, invocations, external_agents CASCADE",
    );
  });

  async function agent(): Promise<string> {
    const id = `agt_${randomBytes(6).toString("hex")}`;
    await database.pool.query(
      `INSERT INTO external_agents (id, organization_id, name, platform, webhook_url, auth_type)
       VALUES ($1, 'org_a', $1, 'slack', 'https://agent.example/invoke', 'none')`,
      [id],
    );
    return id;
  }

  async function invocation(agentId: string): Promise<string> {
    const id = `inv_${randomBytes(6).toString("hex")}`;
    await database.pool.query(
      `INSERT INTO invocations (id, organization_id, external_agent_id, status, principal_type, principal_id,
                                agent_name, agent_endpoint, agent_version, trace_id, span_id, webhook_delivery_status)
       VALUES ($1, 'org_a', $2, 'success', 'api_key', 'key_a', 'agent', 'https://agent.example/invoke', 1,
               'trace', 'span', 'pending')`,
      [id, agentId],
    );
    return id;
  }

  /** Queues `count` platform deliveries of new invocations of `agentId`, due in order; answers their ids. */
  async function queue(agentId: string, count: number, target = "platform"): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const id = `dlv_${randomBytes(6).toString("hex")}`;
      await database.pool.query(
        `INSERT INTO deliveries (id, organization_id, target, event_type, external_agent_id, invocation_id, platform,
                                 next_attempt_at)
         VALUES ($1, 'org_a', $2, 'external_agent.invocation.completed', $3, $4, 'slack',
                 now() - make_interval(secs => $5))`,
        [id, target, agentId, await invocation(agentId), 1_000 - ids.length],
      );
      ids.push(id);
    }
    return ids;
  }

  async function statusOf(table: "deliveries" | "invocations", column: string, id: string) {
    const { rows } = await database.pool.query(`SELECT ${column} AS value FROM ${table} WHERE id = $1`, [id]);
    return rows[0]?.value;
  }

  const unwell: AttemptRecord = {
    startedAt: new Date(),
    durationMs: 3,
    statusCode: 503,
    outcome: "retry",
    error: "the endpoint answered 503",
    nextAttemptAt: new Date(Date.now() + 60_000),
    endpointFailure: true,
  };

  describe("claim", () => {
    it("takes the most overdue deliveries, no more than the cap of each endpoint", async () => {
      const busy = await agent();
      const quiet = await agent();
      const busyRows = await queue(busy, 6);
      const quietRows = await queue(quiet, 2);
      const claimed = await store.claim(16, 4, new Map());
      expect(claimed.map((row) => row.id).sort()).toEqual([...busyRows.slice(0, 4), ...quietRows].sort());
      expect(claimed.every((row) => row.status === "delivering" && row.attempts === 1)).toBe(true);
      expect(claimed[0]?.leaseUntil?.getTime()).toBeGreaterThan(Date.now() + LEASE_MS / 2);
    });

    it("does not let a long queue of an endpoint at its cap hold up the others", async () => {
      const flooded = await agent();
      const other = await agent();
      await queue(flooded, 40);
      const waiting = await queue(other, 1);
      await database.pool.query("UPDATE deliveries SET next_attempt_at = now() WHERE id = $1", waiting);
      const claimed = await store.claim(4, 4, new Map([[`agent:${flooded}`, 4]]));
      expect(claimed.map((row) => row.id)).toEqual(waiting);
    });

    it("leaves paused endpoints' deliveries waiting, and takes over an expired lease", async () => {
      const paused = await agent();
      const healthy = await agent();
      await queue(paused, 1);
      const [expired] = await queue(healthy, 1);
      await database.pool.query(
        "INSERT INTO delivery_endpoints (endpoint, organization_id, paused_at) VALUES ($1, 'org_a', now())",
        [`agent:${paused}`],
      );
      await database.pool.query(
        "UPDATE deliveries SET status = 'delivering', attempts = 1, lease_until = now() - interval '1 second' WHERE id = $1",
        [expired],
      );
      const claimed = await store.claim(16, 4, new Map());
      expect(claimed.map((row) => [row.id, row.attempts])).toEqual([[expired, 2]]);
    });
  });

  describe("recordAttempt", () => {
    async function claimAll(): Promise<DeliveryRow[]> {
      return store.claim(64, 64, new Map());
    }

    it("writes attempts finishing together, each fenced by its own claim", async () => {
      await queue(await agent(), 3);
      const [first, second, third] = await claimAll();
      if (!first || !second || !third) throw new Error("expected three claims");
      // A redelivery took the second one over while it was out.
      await database.pool.query("UPDATE deliveries SET status = 'pending', attempts = 0 WHERE id = $1", [
        second.id,
      ]);
      const results = await Promise.allSettled([
        store.recordAttempt(first, DELIVERED, HOUR_MS),
        store.recordAttempt(second, DELIVERED, HOUR_MS),
        store.recordAttempt(third, { ...unwell, nextAttemptAt: undefined, outcome: "failed" }, HOUR_MS),
      ]);
      expect(results[0]).toMatchObject({
        status: "fulfilled",
        value: { status: "delivered", paused: false },
      });
      expect(results[1]).toMatchObject({ status: "rejected", reason: expect.any(StaleClaimError) });
      expect(results[2]).toMatchObject({ status: "fulfilled", value: { status: "dead", paused: false } });
      expect(await statusOf("deliveries", "status", first.id)).toBe("delivered");
      expect(await statusOf("deliveries", "status", second.id)).toBe("pending");
      expect(await statusOf("deliveries", "status", third.id)).toBe("dead");
      const { rows } = await database.pool.query(
        "SELECT delivery_id, attempt, outcome FROM delivery_attempts",
      );
      expect(rows).toHaveLength(2);
      expect(rows).toEqual(
        expect.arrayContaining([
          { delivery_id: first.id, attempt: 1, outcome: "delivered" },
          { delivery_id: third.id, attempt: 1, outcome: "failed" },
        ]),
      );
    });

    it("numbers an attempt after the log's last entry, even when a redelivery reset the count", async () => {
      const agentId = await agent();
      await queue(agentId, 1);
      const [claim] = await claimAll();
      if (!claim) throw new Error("expected a claim");
      await store.recordAttempt(claim, { ...unwell, nextAttemptAt: new Date() }, HOUR_MS);
      await database.pool.query("UPDATE deliveries SET attempts = 0, next_attempt_at = now() WHERE id = $1", [
        claim.id,
      ]);
      const [again] = await claimAll();
      if (!again) throw new Error("expected the delivery again");
      await store.recordAttempt(again, DELIVERED, HOUR_MS);
      const { rows } = await database.pool.query(
        "SELECT attempt, outcome FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt",
        [claim.id],
      );
      expect(rows).toEqual([
        { attempt: 1, outcome: "retry" },
        { attempt: 2, outcome: "delivered" },
      ]);
    });

    it("shows a platform delivery on its invocation, and not a subscriber's delivery of the same event", async () => {
      const agentId = await agent();
      const [platform] = await queue(agentId, 1);
      const [subscriber] = await queue(agentId, 1, "webhook");
      const claims = await claimAll();
      await Promise.all(claims.map((claim) => store.recordAttempt(claim, DELIVERED, HOUR_MS)));
      const invocationOf = (id: string | undefined) => statusOf("deliveries", "invocation_id", id ?? "");
      expect(await statusOf("invocations", "webhook_delivery_status", await invocationOf(platform))).toBe(
        "delivered",
      );
      expect(
        await statusOf("invocations", "webhook_delivered_at", await invocationOf(platform)),
      ).toBeInstanceOf(Date);
      expect(await statusOf("invocations", "webhook_delivery_status", await invocationOf(subscriber))).toBe(
        "pending",
      );
    });

    it("keeps a failure streak across batches, ended by a success, and pauses with an audit event", async () => {
      const agentId = await agent();
      const endpoint = `agent:${agentId}`;
      await queue(agentId, 2);
      const [failing, recovering] = await claimAll();
      if (!failing || !recovering) throw new Error("expected two claims");
      // The failure finishes after the success in the same batch: it starts a streak of its own.
      const [ok, failed] = await Promise.all([
        store.recordAttempt(recovering, DELIVERED, HOUR_MS),
        store.recordAttempt(failing, unwell, 0),
      ]);
      expect(ok).toEqual({ status: "delivered", paused: false });
      expect(failed).toEqual({ status: "failed", paused: false });
      const { rows: streak } = await database.pool.query(
        "SELECT paused_at FROM delivery_endpoints WHERE endpoint = $1",
        [endpoint],
      );
      expect(streak).toEqual([{ paused_at: null }]);

      // With a zero pause window, the next failure pauses the endpoint.
      await database.pool.query("UPDATE deliveries SET next_attempt_at = now() WHERE id = $1", [failing.id]);
      const [retried] = await claimAll();
      if (!retried) throw new Error("expected the retry");
      expect(await store.recordAttempt(retried, unwell, 0)).toEqual({ status: "failed", paused: true });
      const { rows: audit } = await database.pool.query(
        "SELECT action, resource_id FROM audit_events WHERE action = 'delivery.endpoint_paused'",
      );
      expect(audit).toEqual([{ action: "delivery.endpoint_paused", resource_id: agentId }]);
    });
  });
});

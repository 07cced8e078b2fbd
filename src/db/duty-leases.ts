import { hostname } from "node:os";
import { eq, sql } from "drizzle-orm";
import type { Logger } from "pino";
import { pooledRandomBytes } from "../crypto/random-pool.js";
import type { Db } from "./database.js";
import { dutyLeases } from "./schema.js";

/** A lease outlives this many of its duty's ticks, so one slow tick does not hand it over. */
const TICKS_PER_LEASE = 3;
/** The shortest lease: a holder's renewal is a database round trip that may be slow. */
const MIN_LEASE_MS = 15_000;

export interface DutyLeasesOptions {
  /** This process, as the lease table shows it. */
  holder?: string;
  /** The shortest lease taken (tests shorten it to see a takeover). */
  minLeaseMs?: number;
}

/**
 * Background duties that exactly one replica may do at a time — expiring approvals,
 * sweeping for missed heartbeats, deleting old telemetry — go to whoever holds the
 * duty's lease in PostgreSQL. The holder renews it on each tick; when it stops (or
 * dies), the lease is released (or runs out) and the next replica to tick takes over.
 * A lease lives in the database rather than in a session's advisory lock so that it
 * works on the embedded store too, whose one connection the pool shares.
 */
export class DutyLeases {
  private readonly held = new Set<string>();
  readonly holder: string;
  private readonly minLeaseMs: number;

  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
    options: DutyLeasesOptions = {},
  ) {
    this.holder = options.holder ?? `${hostname()}:${process.pid}:${pooledRandomBytes(4).toString("hex")}`;
    this.minLeaseMs = options.minLeaseMs ?? MIN_LEASE_MS;
  }

  /**
   * Whether this process holds `duty` now (ticking every `tickMs`): takes the lease when
   * it is free or ran out, renews it when already ours.
   */
  async hold(duty: string, tickMs: number): Promise<boolean> {
    const leaseMs = Math.max(this.minLeaseMs, tickMs * TICKS_PER_LEASE);
    const result = await this.db.execute<{ holder: string }>(sql`
      INSERT INTO duty_leases (duty, holder, expires_at)
      VALUES (${duty}, ${this.holder}, now() + make_interval(secs => ${leaseMs / 1000}))
      ON CONFLICT (duty) DO UPDATE
        SET holder = EXCLUDED.holder,
            expires_at = EXCLUDED.expires_at,
            acquired_at = CASE WHEN duty_leases.holder = EXCLUDED.holder
                               THEN duty_leases.acquired_at ELSE now() END
        WHERE duty_leases.holder = EXCLUDED.holder OR duty_leases.expires_at < now()
      RETURNING holder`);
    const ours = result.rows.length > 0;
    if (ours !== this.held.has(duty)) {
      if (ours) this.held.add(duty);
      else this.held.delete(duty);
      this.logger.info(
        { duty, holder: this.holder },
        ours ? "took over a duty" : "another replica took over a duty",
      );
    }
    return ours;
  }

  /** Gives up every duty this process holds, so another replica takes them over at its next tick. */
  async releaseAll(): Promise<void> {
    if (this.held.size === 0) return;
    await this.db.delete(dutyLeases).where(eq(dutyLeases.holder, this.holder));
    this.held.clear();
  }
}

import { and, asc, eq, gt, max, sql } from "drizzle-orm";
import type { Logger } from "pino";
import type { Db } from "../db/database.js";
import { jobEvents } from "../db/schema.js";
import { TickBatcher } from "../db/tick-batcher.js";
import { JOB_WRITES } from "./job-store.js";
import type { StreamBus } from "./stream-bus.js";

/** One event of a job's stream, as watchers receive it. */
export interface JobStreamEvent {
  event_type: string;
  data: Record<string, unknown>;
  seq: number;
}

interface StoredEvent {
  jobId: string;
  seq: number;
  eventType: string;
  data: Record<string, unknown>;
}

/** The live channel of a job (the contract's name, with no prefix: clients subscribe to it). */
export function streamChannel(jobId: string): string {
  return `langgraph:stream:${jobId}`;
}

/** Events that are always stored, past the cap too: late readers must learn how it ended. */
const ALWAYS_STORED = new Set(["end", "error"]);

export interface JobEmitter {
  emit(eventType: string, data: Record<string, unknown>): void;
  /** Resolves when every event emitted so far is stored and handed to the bus. */
  flush(): Promise<void>;
}

/**
 * Each job's event stream: numbered in order, appended to the database (up to a cap per
 * job) for readers that arrive late or reconnect, and published live on the bus.
 */
export class JobStreams {
  /** Events of all jobs running now, stored together: one insert for many jobs' events. */
  private readonly inserts: TickBatcher<StoredEvent, void>;

  constructor(
    private readonly db: Db,
    private readonly bus: StreamBus,
    private readonly maxStoredEvents: number,
    private readonly logger: Logger,
  ) {
    // Rows go as one array per column: the statement is the same whatever the batch's size.
    this.inserts = new TickBatcher(async (events) => {
      await db.execute(sql`insert into ${jobEvents} (job_id, seq, event_type, data)
        select job_id, seq, event_type, data::jsonb from unnest(
          ${sql.param(events.map((event) => event.jobId))}::text[],
          ${sql.param(events.map((event) => event.seq))}::int[],
          ${sql.param(events.map((event) => event.eventType))}::text[],
          ${sql.param(events.map((event) => JSON.stringify(event.data)))}::text[]
        ) as event(job_id, seq, event_type, data)`);
      return [];
    }, JOB_WRITES);
  }

  /**
   * An emitter continuing the job's numbering (a resumed job goes on after its last event);
   * `firstAttempt` says the job never ran before, so it has no events yet.
   */
  async emitter(jobId: string, firstAttempt = false): Promise<JobEmitter> {
    let seq = firstAttempt ? 0 : await this.lastSeq(jobId);
    // Events are written one after the other, so storage and the channel keep their order.
    let chain = Promise.resolve();
    return {
      emit: (eventType, data) => {
        seq += 1;
        const event: JobStreamEvent = { event_type: eventType, data, seq };
        chain = chain.then(() => this.record(jobId, event));
      },
      flush: () => chain,
    };
  }

  private async lastSeq(jobId: string): Promise<number> {
    const [last] = await this.db
      .select({ seq: max(jobEvents.seq) })
      .from(jobEvents)
      .where(eq(jobEvents.jobId, jobId));
    return last?.seq ?? 0;
  }

  /** Stored events after `afterSeq`, in order. */
  async history(jobId: string, afterSeq = 0): Promise<JobStreamEvent[]> {
    const rows = await this.db
      .select()
      .from(jobEvents)
      .where(and(eq(jobEvents.jobId, jobId), gt(jobEvents.seq, afterSeq)))
      .orderBy(asc(jobEvents.seq));
    return rows.map((row) => ({ event_type: row.eventType, data: row.data, seq: row.seq }));
  }

  /** Live events of a job until the returned function is called. */
  subscribe(jobId: string, listener: (event: JobStreamEvent) => void): Promise<() => Promise<void>> {
    return this.bus.subscribe(streamChannel(jobId), (message) =>
      listener(JSON.parse(message) as JobStreamEvent),
    );
  }

  /**
   * Stores the event, then publishes it without waiting for the bus: publishes still go out
   * in order (one connection), and a bus that is away (Redis down) cannot hold up storing
   * the events after it, or the job itself. Readers then follow the stored events.
   */
  private async record(jobId: string, event: JobStreamEvent): Promise<void> {
    // A lost stream event must not fail the job itself: its result is what counts.
    const lost = (error: unknown) =>
      this.logger.warn({ err: error, job_id: jobId, seq: event.seq }, "job stream event not delivered");
    try {
      if (event.seq <= this.maxStoredEvents || ALWAYS_STORED.has(event.event_type))
        await this.inserts.submit({ jobId, seq: event.seq, eventType: event.event_type, data: event.data });
    } catch (error) {
      lost(error);
    }
    this.bus.publish(streamChannel(jobId), JSON.stringify(event)).catch(lost);
  }
}

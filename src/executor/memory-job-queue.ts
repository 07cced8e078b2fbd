import { settledBefore } from "../shutdown.js";
import type { JobConsumer, JobDelivery } from "./job-queue.js";

interface Pending {
  subject: string;
  data: Uint8Array;
  headers: Record<string, string[]>;
  deliveryCount: number;
}

/**
 * The embedded default's stand-in for JetStream: the same deliveries (ack, nak with a
 * delay, term, working) in one process, so jobs run through the same worker code, at
 * most `concurrency` at once as a JetStream consumer's worker runs them. It keeps nothing
 * across restarts; the executor re-submits unfinished jobs at start.
 */
export class MemoryJobQueue {
  private handler?: (delivery: JobDelivery) => Promise<void>;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<void>>();
  /** Not handed to the worker yet: submitted before consume() began, or while every slot was taken. */
  private readonly backlog: Pending[] = [];
  private stopped = false;

  constructor(
    private readonly maxDeliver: number,
    private readonly concurrency: number,
    private readonly onHandlerError: (error: unknown) => void,
  ) {}

  publishJob(subject: string, data: Uint8Array): void {
    this.deliver({ subject, data, headers: {}, deliveryCount: 1 });
  }

  consume(handle: (delivery: JobDelivery) => Promise<void>): JobConsumer {
    this.handler = handle;
    for (const message of this.backlog.splice(0)) this.deliver(message);
    return {
      stop: async (deadline) => {
        this.stopped = true;
        for (const timer of this.timers) clearTimeout(timer);
        this.timers.clear();
        return settledBefore(this.inFlight, deadline);
      },
    };
  }

  /**
   * The same figures as JetStream's consumer info: not yet handed to the worker, and
   * handed over but not finished, waiting for a redelivery included (a JetStream nak with
   * a delay stays ack-pending too).
   */
  pending(): { pending: number; ackPending: number } {
    return { pending: this.backlog.length, ackPending: this.inFlight.size + this.timers.size };
  }

  private deliver(message: Pending): void {
    const handle = this.handler;
    if (this.stopped) return;
    if (!handle || this.inFlight.size >= this.concurrency) {
      this.backlog.push(message);
      return;
    }
    const later = (delayMs: number) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.deliver({ ...message, deliveryCount: message.deliveryCount + 1 });
      }, delayMs);
      this.timers.add(timer);
    };
    const delivery: JobDelivery = {
      ...message,
      maxDeliver: this.maxDeliver,
      ack: () => {},
      nak: (delayMs) => {
        if (message.deliveryCount < this.maxDeliver) later(delayMs);
      },
      term: () => {},
      working: () => {},
    };
    const run = handle(delivery).catch((error: unknown) => {
      this.onHandlerError(error);
      delivery.nak(1000);
    });
    this.inFlight.add(run);
    void run.finally(() => {
      this.inFlight.delete(run);
      const next = this.backlog.shift();
      if (next) this.deliver(next);
    });
  }
}

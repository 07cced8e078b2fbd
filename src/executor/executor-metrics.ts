import type { Logger } from "pino";
import { Gauge, type Registry } from "prom-client";

/** Jobs the consumer has not delivered yet, and jobs delivered but not acknowledged. */
export interface ConsumerLag {
  pending: number;
  ackPending: number;
}

/**
 * A consumer-info answer takes milliseconds; without NATS a scrape would otherwise wait out
 * the JetStream request timeout (5 s), delaying every other metric with it.
 */
const LAG_READ_TIMEOUT_MS = 1_000;

/** What the executor's gauges read at each scrape. */
export interface ExecutorGaugeSources {
  /** The transport jobs arrive on, the gauges' `queue` label. */
  queue: "jetstream" | "in_process";
  consumerLag(): Promise<ConsumerLag> | ConsumerLag;
  streamSubscribers(): number;
}

/**
 * Registers the executor's gauges, read when /metrics is scraped. When the lag cannot be
 * read (NATS away) that scrape leaves the lag series out, rather than failing the whole
 * scrape or showing a zero that looks like an empty queue.
 */
export function registerExecutorGauges(
  registry: Registry,
  sources: ExecutorGaugeSources,
  logger: Logger,
): void {
  let lagRead: Promise<ConsumerLag | undefined> | undefined;
  let failing = false;
  const readLag = async (): Promise<ConsumerLag | undefined> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      const lag = await Promise.race([
        sources.consumerLag(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${LAG_READ_TIMEOUT_MS} ms`)),
            LAG_READ_TIMEOUT_MS,
          );
        }),
      ]);
      failing = false;
      return lag;
    } catch (error) {
      // Once per outage: a scrape every few seconds would otherwise repeat it; /ready reports NATS too.
      if (!failing)
        logger.warn({ err: error }, "cannot read the job consumer's lag; its gauges are left out");
      failing = true;
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  };
  // Both lag gauges are collected at once in one scrape: they share a single request.
  const sharedLag = () => {
    lagRead ??= readLag().finally(() => {
      lagRead = undefined;
    });
    return lagRead;
  };
  const lagGauge = (name: string, help: string, pick: (lag: ConsumerLag) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ["queue"],
      registers: [registry],
      async collect() {
        const lag = await sharedLag();
        this.reset();
        if (lag) this.set({ queue: sources.queue }, pick(lag));
      },
    });
  lagGauge(
    "steward_jobs_consumer_pending",
    "Jobs waiting on the stream, not yet delivered to the executor's consumer",
    (lag) => lag.pending,
  );
  lagGauge(
    "steward_jobs_consumer_ack_pending",
    "Jobs delivered to a worker and not yet acknowledged, those waiting for a redelivery included",
    (lag) => lag.ackPending,
  );
  new Gauge({
    name: "steward_job_stream_subscribers",
    help: "Clients following a job's events (SSE or WebSocket) on this instance",
    registers: [registry],
    collect() {
      this.set(sources.streamSubscribers());
    },
  });
}

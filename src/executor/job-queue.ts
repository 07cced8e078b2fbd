import {
  AckPolicy,
  type Consumer,
  type ConsumerConfig,
  type ConsumerMessages,
  DeliverPolicy,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import {
  connect,
  type MsgHdrs,
  type NatsConnection,
  nanos,
  headers as natsHeaders,
} from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { ExecutorConfig } from "../config.js";
import { settledBefore } from "../shutdown.js";

/** Where the queue connects and its names and limits (defaults in ExecutorConfig: the names). */
export type JobQueueSettings = { url: string } & Pick<
  ExecutorConfig,
  "stream" | "subjectPrefix" | "consumer" | "ackWaitMs" | "maxDeliver" | "concurrency"
>;

/** A running consumer of job messages. */
export interface JobConsumer {
  /**
   * Takes no more messages and waits for those being handled, until `deadline` passes.
   * Answers whether every one of them finished.
   */
  stop(deadline?: AbortSignal): Promise<boolean>;
}

export interface JobDelivery {
  subject: string;
  data: Uint8Array;
  headers: Record<string, string[]>;
  /** 1 on first delivery. */
  deliveryCount: number;
  maxDeliver: number;
  /**
   * Not confirmed by the server: an ack that gets lost brings the message back, and the
   * job store answers it without running the job again.
   */
  ack(): void;
  nak(delayMs: number): void;
  term(reason: string): void;
  working(): void;
}

/** Window in which JetStream drops a repeated Nats-Msg-Id, on both streams. */
const DUPLICATE_WINDOW_MS = 2 * 60_000;
/** Results are kept a day for late readers of the status stream; it exists for de-duplication. */
const STATUS_MAX_AGE_MS = 24 * 60 * 60_000;
/**
 * How long one pull request waits on the server. Short enough that slots freed while a
 * partly-filled pull is open are asked for again soon; one open request per process is cheap.
 */
const FETCH_EXPIRES_MS = 10_000;
/** Pause after a failed pull (server away, consumer missing) before trying again. */
const PULL_RETRY_MS = 2_000;
/** API error codes meaning "exists with another config": stream, consumer (>= 2.10), consumer (older). */
const ALREADY_EXISTS = new Set([10058, 10148, 10013]);

/** A stream as ensure() creates it: the API's field names, durations in nanoseconds. */
export type StreamDeclaration = Partial<StreamConfig> & Required<Pick<StreamConfig, "name" | "subjects">>;
/** The durable consumer as ensure() creates it, and the stream it reads. */
export type ConsumerDeclaration = { stream: string } & Partial<ConsumerConfig> &
  Required<Pick<ConsumerConfig, "durable_name" | "ack_policy" | "ack_wait" | "max_deliver">>;

/**
 * The streams and consumer the executor needs. ensure() creates exactly these, and
 * deploy/nats/jetstream.yaml declares them for operators (a unit test keeps the two equal).
 */
export function jetStreamDeclarations(
  settings: Pick<JobQueueSettings, "stream" | "subjectPrefix" | "consumer" | "ackWaitMs" | "maxDeliver">,
): { jobs: StreamDeclaration; status: StreamDeclaration; consumer: ConsumerDeclaration } {
  const { stream, subjectPrefix: prefix } = settings;
  return {
    jobs: {
      name: stream,
      subjects: [`${prefix}.execute.*`],
      // A job is gone once acked or terminated; the stream is a queue, not a log.
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    },
    // De-duplication only filters what a stream stores: a core subscriber of the subject a
    // result is published on sees every copy. So results go to `results.*`, and the stream
    // re-publishes each message it keeps (never a dropped duplicate) on `status.*`.
    status: {
      name: `${stream}_STATUS`,
      subjects: [`${prefix}.results.>`],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      duplicate_window: nanos(DUPLICATE_WINDOW_MS),
      max_age: nanos(STATUS_MAX_AGE_MS),
      republish: { src: `${prefix}.results.>`, dest: `${prefix}.status.>` },
    },
    consumer: {
      stream,
      durable_name: settings.consumer,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(settings.ackWaitMs),
      max_deliver: settings.maxDeliver,
    },
  };
}

/**
 * Whether a failed publish was refused — JetStream stored nothing: no stream takes the
 * subject, or the server said no — rather than unconfirmed (a timeout, the connection
 * lost), after which the message may have been stored all the same.
 */
export function publishRefused(error: unknown): boolean {
  // The client does not export JetStreamNotEnabled, its answer to a subject no stream takes.
  return (
    error instanceof JetStreamApiError || (error instanceof Error && error.name === "JetStreamNotEnabled")
  );
}

/** Delay before the n-th redelivery (1-based): 1 s, 4 s, 16 s, 64 s, 256 s, then 5 min. */
export function redeliveryDelayMs(deliveryCount: number): number {
  const n = Math.max(1, Math.floor(deliveryCount));
  return Math.min(1_000 * 4 ** (n - 1), 300_000);
}

/** The JetStream transport of the job executor: one work-queue stream, one durable pull consumer. */
export class JobQueue {
  private readonly js: JetStreamClient;

  private constructor(
    private readonly connection: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly settings: JobQueueSettings,
    private readonly logger: Logger,
  ) {
    this.js = jsm.jetstream();
    this.watchStatus().catch(() => {});
  }

  /** Connects (failing fast when the server or JetStream does not answer), then reconnects for ever. */
  static async connect(settings: JobQueueSettings, logger: Logger): Promise<JobQueue> {
    const connection = await connect({
      servers: settings.url,
      name: "steward-executor",
      maxReconnectAttempts: -1,
    });
    try {
      return new JobQueue(connection, await jetstreamManager(connection), settings, logger);
    } catch (error) {
      await connection.close();
      throw error;
    }
  }

  /** Creates or updates both streams and the consumer (idempotent, safe from several processes at once). */
  async ensure(): Promise<void> {
    const { jobs, status, consumer } = jetStreamDeclarations(this.settings);
    // An update changes only what a server lets change; retention and storage stay as created.
    await createOrUpdate(
      () => this.jsm.streams.add(jobs),
      () => this.jsm.streams.update(jobs.name, { duplicate_window: jobs.duplicate_window }),
    );
    const { subjects, duplicate_window, max_age, republish } = status;
    const info = await createOrUpdate(
      () => this.jsm.streams.add(status),
      () => this.jsm.streams.update(status.name, { subjects, duplicate_window, max_age, republish }),
    );
    // A server that does not know `republish` ignores it, and no result would ever be seen.
    if (!info.config.republish) throw new Error(`stream ${status.name}: this NATS server ignores republish`);
    const { stream, ...config } = consumer;
    await createOrUpdate(
      () => this.jsm.consumers.add(stream, config),
      () =>
        this.jsm.consumers.update(stream, config.durable_name, {
          ack_wait: config.ack_wait,
          max_deliver: config.max_deliver,
        }),
    );
  }

  /** Publishes a job message to `${prefix}.execute.${kind}`; `duplicate` is true when JetStream dropped it as a repeat of msgId. */
  async publishJob(
    kind: string,
    data: Uint8Array,
    msgId: string,
    headers?: Record<string, string>,
  ): Promise<{ duplicate: boolean }> {
    const ack = await this.js.publish(`${this.settings.subjectPrefix}.execute.${kind}`, data, {
      msgID: msgId,
      headers: toMsgHdrs(headers),
    });
    return { duplicate: ack.duplicate };
  }

  /** Publishes a result to `${prefix}.status.${outcome}` (via the status stream), de-duplicated by msgId. */
  async publishResult(
    outcome: "completed" | "failed",
    data: Uint8Array,
    msgId: string,
    headers?: Record<string, string>,
  ): Promise<void> {
    await this.js.publish(`${this.settings.subjectPrefix}.results.${outcome}`, data, {
      msgID: msgId,
      headers: toMsgHdrs(headers),
    });
  }

  /** Pulls and hands each message to `handle` (at most `concurrency` at once) until stop(). */
  consume(handle: (delivery: JobDelivery) => Promise<void>): JobConsumer {
    const { stream, consumer: name, concurrency } = this.settings;
    // Under load, one pull for a quarter of the slots rather than one for each job that ends.
    const pullAtLeast = Math.max(1, Math.floor(concurrency / 4));
    const inFlight = new Set<Promise<void>>();
    let stopped = false;
    let current: ConsumerMessages | undefined;
    let wake: () => void = () => {};
    const pause = (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });

    const loop = async () => {
      let consumer: Consumer | undefined;
      while (!stopped) {
        // Busy with most slots: wait until enough are free to be worth a pull of their own.
        if (inFlight.size > 0 && concurrency - inFlight.size < pullAtLeast) {
          await Promise.race([...inFlight, new Promise<void>((resolve) => (wake = resolve))]);
          continue;
        }
        try {
          consumer ??= await this.js.consumers.get(stream, name);
          // Ask only for free slots: a message pulled but left waiting in a client buffer would
          // use up its ack_wait there and be redelivered to another worker while still queued.
          current = await consumer.fetch({
            max_messages: concurrency - inFlight.size,
            expires: FETCH_EXPIRES_MS,
          });
          // close() settles only once the iterator is drained, so it is never awaited here.
          if (stopped) void current.close();
          // A message that arrived just before stop() is run anyway: it is within the budget,
          // and handing it back would cost it one of its max_deliver attempts.
          for await (const msg of current) {
            const task = this.run(msg, handle)
              .catch((error: unknown) =>
                this.logger.error({ err: error }, "job message could not be settled"),
              )
              .finally(() => inFlight.delete(task));
            inFlight.add(task);
          }
        } catch (error) {
          if (stopped) break;
          consumer = undefined;
          this.logger.warn({ err: error, stream, consumer: name }, "job pull failed; retrying");
          await pause(PULL_RETRY_MS);
        } finally {
          current = undefined;
        }
      }
    };
    const done = loop();
    return {
      stop: async (deadline) => {
        stopped = true;
        // Closing the pull's inbox is enough: the server drops a pull request nobody listens to,
        // so messages not yet sent stay in the stream for the next worker.
        void current?.close();
        wake();
        await done;
        // Jobs still running at the deadline are never acked: JetStream redelivers them.
        return settledBefore(inFlight, deadline);
      },
    };
  }

  /** Messages the consumer has not yet delivered or that await ack (for the consumer-lag metric). */
  async pending(): Promise<{ pending: number; ackPending: number }> {
    const info = await this.jsm.consumers.info(this.settings.stream, this.settings.consumer);
    return { pending: info.num_pending, ackPending: info.num_ack_pending };
  }

  /** Resolves with a round trip to the server; throws at once while disconnected (for /ready). */
  async ping(): Promise<void> {
    await this.connection.rtt();
  }

  /** Flushes what is buffered and closes; stop consume() first so handlers can still ack. */
  async close(): Promise<void> {
    if (this.connection.isClosed()) return;
    await this.connection.drain();
  }

  private async run(msg: JsMsg, handle: (delivery: JobDelivery) => Promise<void>): Promise<void> {
    const deliveryCount = msg.info.deliveryCount;
    let settled = false;
    const settle = () => {
      settled = true;
    };
    const delivery: JobDelivery = {
      subject: msg.subject,
      data: msg.data,
      headers: Object.fromEntries(msg.headers ?? []),
      deliveryCount,
      maxDeliver: this.settings.maxDeliver,
      ack: () => {
        settle();
        msg.ack();
      },
      nak: (delayMs) => {
        settle();
        msg.nak(delayMs);
      },
      term: (reason) => {
        settle();
        // Servers before 2.10 ignore a "+TERM <reason>" entirely (the message comes back after
        // ack_wait); the reason only feeds the MSG_TERMINATED advisory, so drop it there.
        if (termTakesReason(this.connection)) msg.term(reason);
        else msg.term();
      },
      working: () => msg.working(),
    };
    const context = { subject: msg.subject, stream_seq: msg.seq, delivery: deliveryCount };
    try {
      await handle(delivery);
      if (!settled) {
        this.logger.warn(context, "job handler returned without ack or nak; redelivering");
        msg.nak(redeliveryDelayMs(deliveryCount));
      }
    } catch (error) {
      // After an ack attempt the outcome is unknown; a nak now could undo an ack that landed.
      if (settled) {
        this.logger.error({ ...context, err: error }, "job handler failed after settling its message");
        return;
      }
      this.logger.warn({ ...context, err: error }, "job handler failed; redelivering with backoff");
      // If this nak is lost (disconnected), ack_wait still brings the message back.
      msg.nak(redeliveryDelayMs(deliveryCount));
    }
  }

  private async watchStatus(): Promise<void> {
    for await (const status of this.connection.status()) {
      if (status.type === "disconnect" || status.type === "reconnect") {
        this.logger.warn({ nats: status.type }, `job queue NATS connection: ${status.type}`);
      }
    }
  }
}

/** Adds a stream or consumer; when another config already holds the name, updates it instead. */
async function createOrUpdate<T>(add: () => Promise<T>, update: () => Promise<T>): Promise<T> {
  try {
    return await add();
  } catch (error) {
    if (error instanceof JetStreamApiError && ALREADY_EXISTS.has(error.code)) return update();
    throw error;
  }
}

function termTakesReason(connection: NatsConnection): boolean {
  const [major = 0, minor = 0] = (connection.info?.version ?? "0.0").split(".").map(Number);
  return major > 2 || (major === 2 && minor >= 10);
}

function toMsgHdrs(values: Record<string, string> | undefined): MsgHdrs | undefined {
  if (!values) return undefined;
  const result = natsHeaders();
  for (const [key, value] of Object.entries(values)) result.set(key, value);
  return result;
}

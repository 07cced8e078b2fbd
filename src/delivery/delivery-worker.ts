import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { SecretDecryptionError } from "../crypto/secret-box.js";
import type { DutyLeases } from "../db/duty-leases.js";
import { PeriodicDuty } from "../db/periodic-duty.js";
import type { DeliveryRow } from "../db/schema.js";
import { isBlockedDestination } from "../invocation/address-guard.js";
import { isUnsendableRequest, transportErrorCode } from "../invocation/http-exchange.js";
import type { DeliveryMetrics } from "../observability/metrics.js";
import { settledBefore } from "../shutdown.js";
import { type DeliveryOutcome, type HttpSender, PlatformConfigError } from "./adapters/adapter.js";
import type { AttemptRecord } from "./attempt-recorder.js";
import { type DeliveryStore, StaleClaimError } from "./delivery-store.js";
import type { DeliveryTarget } from "./delivery-target.js";
import { endpointOf } from "./endpoint-key.js";
import { nextAttemptDelay } from "./retry-schedule.js";

export interface DeliveryWorkerOptions {
  store: DeliveryStore;
  targets: Record<"platform" | "webhook" | "callback", DeliveryTarget>;
  send: HttpSender;
  logger: Logger;
  metrics: DeliveryMetrics;
  retryDelaysMs: readonly number[];
  pauseAfterMs: number;
  timeoutMs: number;
  /** Requests out at once in this process (default 64). */
  concurrency?: number;
  /** Requests out at once to one endpoint (default 4), so a slow platform cannot take every slot. */
  perEndpoint?: number;
  pollIntervalMs?: number;
  /** Runs the release of parked deliveries (see DeliveryStore.unparkResumed) on one replica at a time. */
  leases: DutyLeases;
  /** How often that release runs (default 30 s). */
  unparkIntervalMs?: number;
}

const UNPARK_DUTY = "parked delivery release";

/**
 * Attempts sent but not yet written. Past this the worker claims nothing more and waits
 * for the database, rather than piling up answers it has not recorded.
 */
const MAX_UNRECORDED = 256;

/** Why a send failed, in words that never contain the URL (Telegram's carries the bot token). */
function failureOf(error: unknown, timeoutMs: number): DeliveryOutcome {
  if (isBlockedDestination(error)) {
    return { delivered: false, retryable: false, error: "destination refused by the SSRF guard" };
  }
  // Settings that cannot work, or credentials that cannot be read, will not be fixed by a retry.
  if (error instanceof PlatformConfigError || error instanceof SecretDecryptionError) {
    return { delivered: false, retryable: false, error: error.message };
  }
  const name = (error as { name?: string }).name;
  if (name === "TimeoutError" || name === "AbortError") {
    return { delivered: false, retryable: true, error: `no answer within ${timeoutMs} ms` };
  }
  const code = transportErrorCode(error);
  // A header value undici refuses, say: the same request would be refused again.
  if (isUnsendableRequest(code)) {
    return { delivered: false, retryable: false, error: `request could not be sent (${code})` };
  }
  return { delivered: false, retryable: true, error: `network error (${code})` };
}

/**
 * Claims due deliveries from the outbox and sends them, several at a time but never
 * more than `perEndpoint` to one endpoint. Every attempt is recorded; a failure is
 * retried on the schedule, then the delivery is dead. Any number of workers (replicas)
 * can run: claiming uses SKIP LOCKED, and a claim held by a worker that died expires.
 */
export class DeliveryWorker {
  /** Requests out now, per endpoint. */
  private readonly inFlight = new Map<string, number>();
  /** Requests out now. */
  private sending = 0;
  /** Deliveries claimed whose attempt is not recorded yet. */
  private unrecorded = 0;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  /** A wake came while a claim was under way: claim again as soon as it ends. */
  private wokenWhileTicking = false;
  private stopped = true;
  private readonly active = new Set<Promise<void>>();
  private readonly concurrency: number;
  private readonly perEndpoint: number;
  private readonly pollIntervalMs: number;
  /**
   * The safety net of parking: a success lifts a pause without unparking, and a claim may
   * park rows of an endpoint whose pause a redelivery is lifting at that moment.
   */
  private readonly unparking: PeriodicDuty;

  constructor(private readonly options: DeliveryWorkerOptions) {
    this.concurrency = options.concurrency ?? 64;
    this.perEndpoint = options.perEndpoint ?? 4;
    this.pollIntervalMs = options.pollIntervalMs ?? 500;
    this.unparking = new PeriodicDuty({
      duty: UNPARK_DUTY,
      leases: options.leases,
      intervalMs: options.unparkIntervalMs ?? 30_000,
      logger: options.logger,
      pass: () => this.unparkResumed(),
    });
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
    this.unparking.start();
  }

  /**
   * Claims nothing more and waits for deliveries under way, until `deadline`; one
   * unfinished then keeps its claim until the lease ends and is retried by another worker.
   */
  async stop(deadline?: AbortSignal): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await Promise.all([this.unparking.stop(deadline), this.ticking]);
    await settledBefore(this.active, deadline);
  }

  /** Looks for work now, e.g. right after an invocation queued a delivery. */
  wake(): void {
    if (this.stopped) return;
    if (this.ticking) this.wokenWhileTicking = true;
    else this.schedule(0);
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.ticking ??= this.tick().finally(() => {
        this.ticking = undefined;
        const again = this.wokenWhileTicking;
        this.wokenWhileTicking = false;
        if (!this.stopped) this.schedule(again ? 0 : this.pollIntervalMs);
      });
    }, delayMs);
  }

  private async unparkResumed(): Promise<void> {
    const unparked = await this.options.store.unparkResumed();
    if (unparked > 0) {
      this.options.logger.info(
        { count: unparked },
        "resumed parked deliveries of endpoints no longer paused",
      );
      this.wake();
    }
  }

  private async tick(): Promise<void> {
    let claimed: DeliveryRow[];
    try {
      claimed = await this.options.store.claim(
        Math.min(this.concurrency - this.sending, MAX_UNRECORDED - this.unrecorded),
        this.perEndpoint,
        this.inFlight,
      );
    } catch (error) {
      this.options.logger.error({ err: error }, "could not claim deliveries; will try again");
      return;
    }
    for (const delivery of claimed) {
      const work = this.process(delivery).finally(() => {
        this.active.delete(work);
        this.wake();
      });
      this.active.add(work);
    }
  }

  /**
   * Sends one delivery and records the attempt. Its slots (of the worker, and of its
   * endpoint) are held while the request is out; recording waits for the next batch of
   * attempts to be written, and meanwhile the worker sends others.
   */
  private async process(delivery: DeliveryRow): Promise<void> {
    const endpoint = endpointOf(delivery);
    this.sending++;
    this.unrecorded++;
    this.inFlight.set(endpoint, (this.inFlight.get(endpoint) ?? 0) + 1);
    const startedAt = new Date();
    const started = performance.now();
    try {
      let outcome: DeliveryOutcome;
      try {
        outcome = await this.attempt(delivery);
      } finally {
        this.sending--;
        const left = (this.inFlight.get(endpoint) ?? 1) - 1;
        if (left === 0) this.inFlight.delete(endpoint);
        else this.inFlight.set(endpoint, left);
        this.wake();
      }
      await this.record(delivery, outcome, startedAt, Math.round(performance.now() - started));
    } catch (error) {
      // A stale claim: someone else owns the delivery now and records its own attempts.
      // Otherwise the log could not be written (database down): the lease runs out and the
      // delivery is claimed again, so it is retried rather than lost.
      if (error instanceof StaleClaimError)
        this.options.logger.info({ delivery_id: delivery.id }, error.message);
      else
        this.options.logger.error(
          { err: error, delivery_id: delivery.id },
          "could not record a delivery attempt",
        );
    } finally {
      this.unrecorded--;
    }
  }

  private async attempt(delivery: DeliveryRow): Promise<DeliveryOutcome> {
    const { targets, send, timeoutMs } = this.options;
    try {
      const prepared =
        await targets[delivery.target as keyof DeliveryWorkerOptions["targets"]].prepare(delivery);
      if ("skip" in prepared) return { delivered: false, retryable: false, error: prepared.skip };
      // The same id on every attempt: the receiver's idempotency key.
      prepared.payload.headers["x-steward-delivery-id"] = delivery.id;
      return await prepared.deliver(prepared.payload, send, timeoutMs);
    } catch (error) {
      return failureOf(error, timeoutMs);
    }
  }

  private async record(delivery: DeliveryRow, outcome: DeliveryOutcome, startedAt: Date, durationMs: number) {
    const { store, retryDelaysMs, pauseAfterMs, logger, metrics } = this.options;
    const delay =
      outcome.delivered || !outcome.retryable
        ? null
        : nextAttemptDelay(retryDelaysMs, delivery.attempts, outcome.retryAfterMs);
    const attempt: AttemptRecord = {
      startedAt,
      durationMs,
      statusCode: outcome.statusCode ?? null,
      outcome: outcome.delivered ? "delivered" : delay !== null ? "retry" : "failed",
      error: outcome.error ?? null,
      endpointFailure: !outcome.delivered && outcome.retryable,
      ...(delay !== null && { nextAttemptAt: new Date(Date.now() + delay) }),
    };
    const { paused, status } = await store.recordAttempt(delivery, attempt, pauseAfterMs);
    metrics.deliveries.inc({ state: status });
    if (paused) logger.warn({ endpoint: endpointOf(delivery) }, "delivery endpoint keeps failing; paused");
  }
}

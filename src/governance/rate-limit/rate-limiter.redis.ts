import { Redis, type Result } from "ioredis";
import {
  type LimitSpec,
  type RateLimitDecision,
  type RateLimiter,
  RateLimiterUnavailableError,
  WINDOW_SECONDS,
  type WindowState,
} from "./rate-limiter.js";
import {
  type BucketCounts,
  decide,
  type WindowReading,
  windowPosition,
  windowState,
} from "./sliding-window.js";

/**
 * Counters in Redis (or Dragonfly), shared by every replica. A Lua script reads both
 * buckets of every window, applies the sliding-window rule and, only if every window
 * admits the call, counts it in each current bucket. The script runs atomically, so
 * concurrent replicas never both take the last call.
 *
 * The decisions asked for in one turn of the event loop go to Redis together, as one
 * script call deciding each in turn: a busy process then pays one command, one socket
 * write and one script start per turn instead of per call, which is what lets one
 * process make tens of thousands of decisions a second. Each decision is still
 * all-or-nothing and decided exactly as it would be alone, in the order it was asked.
 */

const DEFAULT_TIMEOUT_MS = 50;
/**
 * Decisions in one script call at most. Redis serves nothing else while a script runs,
 * and a busy turn split over a few calls lets Redis decide one while this process reads
 * the answer to another.
 */
const MAX_BATCH_DECISIONS = 16;

/**
 * A batch of decisions, one after the other.
 * ARGV, per decision: its number of windows, then each window's limit, previous-bucket
 * weight and bucket TTL in seconds, in triples.
 * KEYS, per decision: the previous and the current bucket of each window, in pairs.
 * Returns, per decision: 1 if the call was counted (else 0), then the counts read before counting it.
 * Every key is passed in KEYS, as Dragonfly requires of scripts by default.
 */
const CONSUME_SCRIPT = `
local reply = {}
local key = 0
local arg = 1
while arg <= #ARGV do
  local windows = tonumber(ARGV[arg])
  local counts = redis.call("MGET", unpack(KEYS, key + 1, key + 2 * windows))
  local admitted = 1
  for i = 1, windows do
    local previous = tonumber(counts[2 * i - 1]) or 0
    local current = tonumber(counts[2 * i]) or 0
    counts[2 * i - 1] = previous
    counts[2 * i] = current
    -- The rule of slidingCount() in sliding-window.ts: keep the two identical.
    if math.floor(previous * tonumber(ARGV[arg + 3 * i - 1]) + current) + 1 > tonumber(ARGV[arg + 3 * i - 2]) then
      admitted = 0
    end
  end
  if admitted == 1 then
    for i = 1, windows do
      -- The TTL is set once, by the call that creates the bucket (an EXPIRE per call
      -- costs Redis about a third of the script): two windows from the bucket's first
      -- call outlast its time as the current and then the previous bucket.
      if redis.call("INCR", KEYS[key + 2 * i]) == 1 then
        redis.call("EXPIRE", KEYS[key + 2 * i], ARGV[arg + 3 * i])
      end
    end
  end
  reply[#reply + 1] = admitted
  for i = 1, 2 * windows do
    reply[#reply + 1] = counts[i]
  end
  key = key + 2 * windows
  arg = arg + 1 + 3 * windows
end
return reply
`;

declare module "ioredis" {
  interface RedisCommander<Context> {
    stewardRateLimitConsume(
      numberOfKeys: number,
      ...keysAndArgs: (string | number)[]
    ): Result<number[], Context>;
  }
}

export interface RedisRateLimiterOptions {
  /** A client built by `createRedisClient` (or with the same options); the limiter owns it from now on and quits it on close. */
  redis: Redis;
  /** Prepended to every key, e.g. "steward:". */
  keyPrefix: string;
  /** What `consume` does when the store does not answer: "open" allows the call, "closed" throws. */
  failMode: "open" | "closed";
  /** How long a decision may wait for the store once sent; default 50 ms. */
  timeoutMs?: number;
  /** Told about every store failure, including those fail mode "open" absorbs, so they can be logged and counted. */
  onStoreError?: (error: unknown) => void;
}

/** Decisions waiting to be sent as one script call, with the script's keys and arguments laid out. */
interface Batch {
  keys: string[];
  args: (string | number)[];
  waiting: Array<{ windows: number; answer(reply: number[]): void; fail(error: unknown): void }>;
}

export class RedisRateLimiter implements RateLimiter {
  private readonly redis: Redis;
  private readonly keyPrefix: string;
  private readonly failMode: "open" | "closed";
  private readonly timeoutMs: number;
  private readonly onStoreError: (error: unknown) => void;
  /** Decisions asked for in this turn of the event loop, sent once its I/O callbacks have run. */
  private batches: Batch[] = [];

  constructor(options: RedisRateLimiterOptions) {
    this.redis = options.redis;
    this.keyPrefix = options.keyPrefix;
    this.failMode = options.failMode;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.onStoreError = options.onStoreError ?? (() => {});
    // ioredis sends the script itself on a connection's first call and its SHA afterwards.
    this.redis.defineCommand("stewardRateLimitConsume", { lua: CONSUME_SCRIPT });
  }

  async consume(specs: LimitSpec[], now = Date.now()): Promise<RateLimitDecision> {
    if (specs.length === 0) return { allowed: true, degraded: false };
    let reply: number[];
    try {
      reply = await this.queue(specs, now);
    } catch (error) {
      this.onStoreError(error);
      if (this.failMode === "closed") throw new RateLimiterUnavailableError(error);
      return { allowed: true, degraded: true };
    }
    const [admitted, ...counts] = reply;
    const decision = decide(readings(specs, counts), now);
    // Both sides apply one rule to the same numbers; a mismatch means someone changed only one of them.
    if (decision.allowed !== (admitted === 1)) {
      throw new Error("the rate-limit script and sliding-window.ts disagree; keep their rules identical");
    }
    return decision;
  }

  /** Throws `RateLimiterUnavailableError` in either fail mode: a status page should say "unknown", not "unused". */
  async inspect(specs: LimitSpec[], now = Date.now()): Promise<WindowState[]> {
    if (specs.length === 0) return [];
    let values: (string | null)[];
    try {
      values = await this.withTimeout(
        this.redis.mget(
          specs.flatMap((spec) => this.bucketKeys(spec, windowPosition(spec.window, now).bucket)),
        ),
      );
    } catch (error) {
      this.onStoreError(error);
      throw new RateLimiterUnavailableError(error);
    }
    return readings(specs, values.map(Number)).map(({ spec, counts }) => windowState(spec, counts, now));
  }

  async close(): Promise<void> {
    // A store that does not answer must not hold up shutdown: then the socket is simply dropped.
    await this.withTimeout(this.redis.quit()).catch(() => this.redis.disconnect());
  }

  /** Adds one decision to this turn's batch; answers the script's reply for it. */
  private queue(specs: LimitSpec[], now: number): Promise<number[]> {
    if (this.batches.length === 0) setImmediate(() => this.sendBatches());
    let batch = this.batches.at(-1);
    if (!batch || batch.waiting.length === MAX_BATCH_DECISIONS) {
      batch = { keys: [], args: [], waiting: [] };
      this.batches.push(batch);
    }
    batch.args.push(specs.length);
    for (const spec of specs) {
      const { bucket, previousWeight } = windowPosition(spec.window, now);
      batch.keys.push(...this.bucketKeys(spec, bucket));
      batch.args.push(spec.limit, previousWeight, 2 * WINDOW_SECONDS[spec.window]);
    }
    const waiting = batch.waiting;
    return new Promise((answer, fail) => waiting.push({ windows: specs.length, answer, fail }));
  }

  private sendBatches(): void {
    const batches = this.batches;
    this.batches = [];
    for (const batch of batches) void this.send(batch);
  }

  /** One script call for the batch; the timeout runs from here, so time spent queued in this process never counts against the store. */
  private async send({ keys, args, waiting }: Batch): Promise<void> {
    let reply: number[];
    try {
      reply = await this.withTimeout(this.redis.stewardRateLimitConsume(keys.length, ...keys, ...args));
    } catch (error) {
      for (const decision of waiting) decision.fail(error);
      return;
    }
    let offset = 0;
    for (const decision of waiting) {
      const end = offset + 1 + 2 * decision.windows;
      decision.answer(reply.slice(offset, end));
      offset = end;
    }
  }

  /** The previous and the current bucket of a window: `<prefix>ratelimit:<key>:<window>:<bucket index>`. */
  private bucketKeys(spec: LimitSpec, bucket: number): [string, string] {
    const base = `${this.keyPrefix}ratelimit:${spec.key}:${spec.window}:`;
    return [`${base}${bucket - 1}`, `${base}${bucket}`];
  }

  private withTimeout<T>(work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      // Timers run before I/O in an event-loop turn: after a stall longer than the timeout,
      // the timer would fire ahead of a reply already waiting in the socket. setImmediate
      // lets that I/O be read first, so only a store that really did not answer times out.
      timer = setTimeout(
        () =>
          setImmediate(() =>
            reject(new Error(`rate-limit store did not answer within ${this.timeoutMs} ms`)),
          ),
        this.timeoutMs,
      );
    });
    return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
  }
}

/** Pairs each spec with its two bucket counts, given flat as previous, current, previous, current… */
function readings(specs: LimitSpec[], counts: number[]): WindowReading[] {
  return specs.map((spec, i) => {
    const bucketCounts: BucketCounts = { previous: counts[2 * i] ?? 0, current: counts[2 * i + 1] ?? 0 };
    return { spec, counts: bucketCounts };
  });
}

/**
 * A client with the options the limiter relies on to answer within its deadline while
 * Redis is away. Use it for the limiter alone: they do not suit blocking commands or
 * subscriptions.
 * - `enableOfflineQueue: false`: while disconnected a command fails at once instead of
 *   waiting in a queue, so an outage costs each decision nothing, not the whole timeout.
 * - `maxRetriesPerRequest: 0`, `autoResendUnfulfilledCommands: false`: a decision in
 *   flight when the connection drops fails instead of being replayed after the caller
 *   has already acted on the fail mode.
 * - `socketTimeout`: a connection that stops answering without closing (a network
 *   partition sends no reset) is dropped, so decisions fail at once instead of each
 *   waiting out the timeout until TCP keep-alive notices.
 * - `connectTimeout` and `retryStrategy`: reconnect attempts every 100 ms to 1 s, so
 *   limits apply again within about a second of Redis coming back.
 * - an `error` listener: ioredis reports every failed reconnect as an `error` event,
 *   which would otherwise be printed to stderr each time.
 */
export function createRedisClient(url: string, onError: (error: Error) => void = () => {}): Redis {
  const redis = new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    socketTimeout: 1000,
    connectTimeout: 1000,
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
  });
  redis.on("error", onError);
  return redis;
}

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
 * Counters in Redis (or Dragonfly), shared by every replica. One decision is one round
 * trip: a Lua script reads both buckets of every window, applies the sliding-window
 * rule and, only if every window admits the call, counts it in each current bucket.
 * The script runs atomically, so concurrent replicas never both take the last call.
 */

const DEFAULT_TIMEOUT_MS = 50;

/**
 * KEYS: the previous and the current bucket of each window, in pairs.
 * ARGV: each window's limit, previous-bucket weight and bucket TTL in seconds, in triples.
 * Returns 1 if the call was counted (else 0), then the counts read before counting it.
 * Every key is passed in KEYS, as Dragonfly requires of scripts by default.
 */
const CONSUME_SCRIPT = `
local counts = {}
local admitted = 1
for i = 1, #KEYS / 2 do
  local previous = tonumber(redis.call("GET", KEYS[2 * i - 1])) or 0
  local current = tonumber(redis.call("GET", KEYS[2 * i])) or 0
  counts[2 * i - 1] = previous
  counts[2 * i] = current
  -- The rule of slidingCount() in sliding-window.ts: keep the two identical.
  if math.floor(previous * tonumber(ARGV[3 * i - 1]) + current) + 1 > tonumber(ARGV[3 * i - 2]) then
    admitted = 0
  end
end
if admitted == 1 then
  for i = 1, #KEYS / 2 do
    redis.call("INCR", KEYS[2 * i])
    redis.call("EXPIRE", KEYS[2 * i], ARGV[3 * i])
  end
end
table.insert(counts, 1, admitted)
return counts
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
  /** How long a decision may wait for the store; default 50 ms. */
  timeoutMs?: number;
  /** Told about every store failure, including those fail mode "open" absorbs, so they can be logged and counted. */
  onStoreError?: (error: unknown) => void;
}

export class RedisRateLimiter implements RateLimiter {
  private readonly redis: Redis;
  private readonly keyPrefix: string;
  private readonly failMode: "open" | "closed";
  private readonly timeoutMs: number;
  private readonly onStoreError: (error: unknown) => void;

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
    const keys = specs.flatMap((spec) => this.bucketKeys(spec, now));
    const args = specs.flatMap((spec) => [
      spec.limit,
      windowPosition(spec.window, now).previousWeight,
      2 * WINDOW_SECONDS[spec.window],
    ]);
    let reply: number[];
    try {
      reply = await this.withTimeout(this.redis.stewardRateLimitConsume(keys.length, ...keys, ...args));
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
      values = await this.withTimeout(this.redis.mget(specs.flatMap((spec) => this.bucketKeys(spec, now))));
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

  /** The previous and the current bucket of a window: `<prefix>ratelimit:<key>:<window>:<bucket index>`. */
  private bucketKeys(spec: LimitSpec, now: number): [string, string] {
    const { bucket } = windowPosition(spec.window, now);
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

import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { pino } from "pino";
import type { BudgetConfig } from "../../src/agents/governance-config.js";
import { openDatabase } from "../../src/db/database.js";
import { runMigrations } from "../../src/db/migrate.js";
import { TickBatcher } from "../../src/db/tick-batcher.js";
import {
  BudgetService,
  type BudgetTarget,
  type ReserveRequest,
  type Settlement,
} from "../../src/governance/budget/budget.service.js";
import { limitSpecsFor } from "../../src/governance/rate-limit/limit-specs.js";
import type { LimitSpec } from "../../src/governance/rate-limit/rate-limiter.js";
import { createRedisClient, RedisRateLimiter } from "../../src/governance/rate-limit/rate-limiter.redis.js";
import { DEFAULT_ORGANIZATION_ID, OrganizationService } from "../../src/orgs/organization.service.js";
import type { BenchSettings } from "../settings.js";
import { percentile } from "../stats.js";
import { dropSchema } from "../steward.js";

/** Throughput and latency of one primitive measured in the bench process. */
export interface PrimitiveRun {
  /** Operations completed per second of wall-clock time, all in flight together. */
  opsPerSecond: number;
  /** Median time of one operation, from its call to its answer, in milliseconds (high-resolution clock). */
  p50Ms: number;
  /** 99th percentile of the same, in milliseconds. */
  p99Ms: number;
  /** Operations kept in flight at once, as a busy server's concurrent requests would. */
  inFlight: number;
}

/** A rate-limit run, with the decisions Redis did not make. */
export interface RateLimitRun extends PrimitiveRun {
  /** Decisions Redis did not answer within the limiter's 50 ms, so the fail mode made them: 0 in a good run. */
  degraded: number;
}

/** The governance primitives every invoke passes through, each alone, against the real Redis and PostgreSQL. */
export interface PrimitiveFigures {
  rateLimit: {
    /** `RedisRateLimiter.consume` with a minute, hour and day limit, calls spread over 1,000 agents. */
    spread: RateLimitRun;
    /** The same, every call on one agent: the same Redis keys every time. */
    hot: RateLimitRun;
  };
  budget: {
    /** `BudgetService` reserve then settle (one in ten released instead), every call on one agent. */
    oneAgent: PrimitiveRun;
    /** The same, spread over 1,000 agents of one organization. */
    thousandAgents: PrimitiveRun;
  };
}

const SPREAD_AGENTS = 1_000;
/** About the invoke run's 50 connections: what one busy Steward process has in flight. */
const RATE_LIMIT_IN_FLIGHT = 64;
/** The invoke run's connections again; Steward's default pool of 10 connections queues the rest. */
const BUDGET_IN_FLIGHT = 50;
const DATABASE_POOL_SIZE = 10;
/** Uncounted operations first, so the JIT, the connections and the Lua script cache are warm. */
const RATE_LIMIT_WARM_UP = 20_000;
const BUDGET_WARM_UP = 500;

/** Limits no run reaches: every decision is a full read-and-count, never an early refusal. */
const HIGH_LIMITS = { requests_per_minute: 1e9, requests_per_hour: 1e9, requests_per_day: 1e9 };
/** The bench's governed agent: a tiny cost per call under a cap no run reaches. */
const AGENT_BUDGET: BudgetConfig = { cost_per_execution: 0.000001, max_monthly_cost: 1_000_000 };

export async function runPrimitives(settings: BenchSettings): Promise<PrimitiveFigures> {
  return {
    rateLimit: await measureRateLimiter(settings),
    budget: await measureBudgets(settings),
  };
}

async function measureRateLimiter(settings: BenchSettings): Promise<PrimitiveFigures["rateLimit"]> {
  const keyPrefix = `steward_bench_${randomBytes(4).toString("hex")}:`;
  // Fail mode open, as Steward runs by default: a decision Redis is too slow for counts as degraded.
  const limiter = new RedisRateLimiter({
    redis: await readyClient(settings.redisUrl),
    keyPrefix,
    failMode: "open",
  });
  const specsOf = Array.from({ length: SPREAD_AGENTS }, (_, i) =>
    limitSpecsFor(`agt_bench_${i}`, HIGH_LIMITS, {}, undefined),
  );
  const run = async (operations: number, agentOf: (index: number) => number): Promise<RateLimitRun> => {
    let degraded = 0;
    const figures = await measure(operations, RATE_LIMIT_IN_FLIGHT, async (i) => {
      const decision = await limiter.consume(specsOf[agentOf(i)] as LimitSpec[]);
      if (decision.degraded) degraded++;
      else if (!decision.allowed) throw new Error("the bench's rate limit refused a call");
    });
    return { ...figures, degraded };
  };
  try {
    await run(Math.min(RATE_LIMIT_WARM_UP, settings.primitiveOperations), (i) => i % SPREAD_AGENTS);
    return {
      spread: await run(settings.primitiveOperations, (i) => i % SPREAD_AGENTS),
      hot: await run(settings.primitiveOperations, () => 0),
    };
  } finally {
    await limiter.close();
    await deleteKeys(settings.redisUrl, keyPrefix);
  }
}

async function measureBudgets(settings: BenchSettings): Promise<PrimitiveFigures["budget"]> {
  const schema = `steward_bench_${randomBytes(4).toString("hex")}`;
  const database = await openDatabase(
    { kind: "postgres", connectionString: settings.databaseUrl, schema, poolSize: DATABASE_POOL_SIZE },
    pino({ level: "silent" }),
  );
  try {
    await runMigrations(database.pool, schema);
    await new OrganizationService(database.db).ensureDefault();
    // No event outbox: thresholds are announced only when crossed, and no run comes near a cap.
    const budgets = new BudgetService(database.db);
    const targets = Array.from(
      { length: SPREAD_AGENTS },
      (_, i): BudgetTarget => ({
        organizationId: DEFAULT_ORGANIZATION_ID,
        agentId: `agt_bench_${i}`,
        agentBudget: AGENT_BUDGET,
        organizationBudget: {},
      }),
    );
    const context = { actor: { type: "api_key", id: "bench" }, requestId: "bench" } as const;
    // As an invocation does: reserve the estimate, then settle at the actual cost, or
    // release when the call never ran — each in the batch of the calls that reach that
    // step at the same time, one transaction per batch (see InvocationJournal).
    const reservations = new TickBatcher((requests: ReserveRequest[]) =>
      database.db.transaction((tx) => budgets.reserveAll(tx, requests)),
    );
    const settlements = new TickBatcher(async (batch: Settlement[]) => {
      await database.db.transaction((tx) => budgets.settleAll(tx, batch));
      return batch.map(() => undefined);
    });
    const invoke = async (target: BudgetTarget, i: number) => {
      const amount = AGENT_BUDGET.cost_per_execution ?? 0;
      const reserved = await reservations.submit({ target, amount, now: new Date() });
      if (!reserved.allowed) throw new Error("the bench's budget refused a call");
      await settlements.submit(
        i % 10 === 9
          ? { kind: "release", reservation: reserved.reservation }
          : { kind: "settle", reservation: reserved.reservation, cost: amount, target, context },
      );
    };
    const spread = (i: number) => invoke(targets[i % SPREAD_AGENTS] as BudgetTarget, i);
    const oneAgent = (i: number) => invoke(targets[0] as BudgetTarget, i);
    await measure(Math.min(BUDGET_WARM_UP, settings.budgetOperations), BUDGET_IN_FLIGHT, spread);
    return {
      oneAgent: await measure(settings.budgetOperations, BUDGET_IN_FLIGHT, oneAgent),
      thousandAgents: await measure(settings.budgetOperations, BUDGET_IN_FLIGHT, spread),
    };
  } finally {
    await database.close();
    await dropSchema(settings.databaseUrl, schema);
  }
}

/** Runs `operation(0 … operations - 1)` with `inFlight` of them pending at any time, timing each. */
async function measure(
  operations: number,
  inFlight: number,
  operation: (index: number) => Promise<void>,
): Promise<PrimitiveRun> {
  const latencies: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < operations) {
      const index = next++;
      const started = performance.now();
      await operation(index);
      latencies.push(performance.now() - started);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = (performance.now() - started) / 1000;
  return {
    opsPerSecond: operations / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    inFlight,
  };
}

/** The limiter's own client, once connected: it fails at once rather than queue while connecting. */
async function readyClient(url: string): Promise<Redis> {
  const redis = createRedisClient(url);
  const deadline = Date.now() + 5_000;
  while (redis.status !== "ready") {
    if (Date.now() > deadline) throw new Error(`Redis at ${url} is not reachable (status ${redis.status})`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return redis;
}

async function deleteKeys(url: string, keyPrefix: string): Promise<void> {
  const redis = new Redis(url);
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${keyPrefix}*`, "COUNT", 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    await redis.quit();
  }
}

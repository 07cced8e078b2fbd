import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, type TestContext } from "vitest";
import { until } from "../helpers/eventually.js";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import { type RestartablePostgres, startRestartablePostgres } from "../helpers/postgres-server.js";
import { type RestartableRedisServer, startRestartableRedisServer } from "../helpers/redis-server.js";
import { invokeEnv, registerAgent, startTestSteward, type TestSteward } from "../helpers/steward.js";
import { startStewardServer, stewardEnvironment } from "../helpers/steward-process.js";
import {
  errorCodeOf,
  httpSender,
  type InvokeLoad,
  injectSender,
  invocationIdOf,
  type LoadOutcome,
  startInvokeLoad,
  statusSummary,
} from "./invoke-load.js";
import { tally } from "./tally.js";

/**
 * The services Steward stands on fail under invoke load. Redis (rate-limit counters)
 * stopped and frozen with SIGSTOP: answers stay bounded, the configured fail mode
 * applies, budgets hold, and limits are back within one window. PostgreSQL crashed and
 * shut down: calls fail fast with 503, Steward recovers on its own, and every call it
 * answered 2xx has its record and its outbox row.
 */

/** The agent's outbound credential: it must never appear in an answer. */
const AGENT_TOKEN = "chaos-agent-bearer-CANARY-7070";
/** Deadline of one call to the (immediately answering) agent stand-in. */
const INVOKE_TIMEOUT_MS = 2_000;
/** Headroom for a loaded two-core machine on top of the deadlines a bound is made of; not a benchmark. */
const SLACK_MS = 3_000;
/** The invoke load: two workers with a pause, about a hundred requests per load. */
const LOAD = { concurrency: 2, pauseMs: 40 };
/** A service stays down this long at least, under load, before it is brought back… */
const OUTAGE_MS = 2_000;
/** …and until each load has had this many answers sent and answered while it was down. */
const DOWN_ANSWERS = 10;

/** Answers whose body or headers carry the agent's credential. */
function leakedCredentials(outcomes: readonly LoadOutcome[]): number {
  return outcomes.filter(
    ({ answer }) => answer && `${answer.body}${JSON.stringify(answer.headers)}`.includes(AGENT_TOKEN),
  ).length;
}

/** Sent and answered while the service was down: what the fault itself got. */
const duringOutage = (outcome: LoadOutcome) => outcome.sentIn === "down" && outcome.endedIn === "down";

/**
 * What the load got that it should not have, as "down→down: 500 INTERNAL_ERROR ×4" (sent
 * in → answered in: what, how often); [] when nothing. `boundOf` is the time an answer to
 * that request was allowed.
 */
function unexpectedAnswers(
  outcomes: readonly LoadOutcome[],
  boundOf: (outcome: LoadOutcome) => number,
  asSpecified: (outcome: LoadOutcome) => boolean,
): string[] {
  const counts = new Map<string, number>();
  for (const outcome of outcomes.filter((candidate) => !asSpecified(candidate))) {
    const { answer } = outcome;
    const late = outcome.endedAt - outcome.sentAt > boundOf(outcome) ? " after the bound" : "";
    const what = answer ? `${answer.status} ${errorCodeOf(answer) ?? ""}${late}` : outcome.error;
    const key = `${outcome.sentIn}→${outcome.endedIn}: ${what}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([key, count]) => `${key} ×${count}`);
}

const countOf = (outcomes: readonly LoadOutcome[], check: (outcome: LoadOutcome) => boolean) =>
  outcomes.filter(check).length;

const agentBody = (overrides: Record<string, unknown>) => ({
  auth_type: "bearer_token",
  auth_config: { token: AGENT_TOKEN },
  ...overrides,
});

describe("Redis stopped and frozen under invoke load", () => {
  /** How long a decision waits for Redis before the fail mode applies (STEWARD_RATE_LIMIT_TIMEOUT_MS). */
  const RATE_LIMIT_TIMEOUT_MS = 1_000;
  /** Every answer within: the wait for Redis, plus the agent call's deadline, plus slack. */
  const BOUND_MS = RATE_LIMIT_TIMEOUT_MS + INVOKE_TIMEOUT_MS + SLACK_MS;
  /** The shortest rate-limit window, the one the agents are limited in. */
  const WINDOW_MS = 60_000;
  const LIMIT = 10;
  const COST = 0.01;
  /** Five calls past the limit: fail mode open lets enough through to reach the cap while Redis is away. */
  const PAID_CALLS = LIMIT + 5;
  const CAP = PAID_CALLS * COST;

  /** The record status behind each answer status the load can get. */
  const RECORD_STATUS: Record<number, string> = {
    200: "success",
    402: "budget_exceeded",
    429: "rate_limited",
    503: "error",
  };

  type FailMode = "open" | "closed";
  const MODES: FailMode[] = ["open", "closed"];

  let redis: RestartableRedisServer;
  let agent: MockAgent;
  const stewards = new Map<FailMode, TestSteward>();

  beforeAll(async () => {
    redis = await startRestartableRedisServer();
    agent = await startMockAgent();
    for (const mode of MODES) {
      const env = invokeEnv({
        REDIS_URL: redis.url,
        STEWARD_RATE_LIMIT_FAIL_MODE: mode,
        STEWARD_RATE_LIMIT_TIMEOUT_MS: String(RATE_LIMIT_TIMEOUT_MS),
        STEWARD_INVOKE_TIMEOUT_MS: String(INVOKE_TIMEOUT_MS),
      });
      stewards.set(mode, await startTestSteward("postgres", env));
    }
  });

  afterAll(async () => {
    for (const steward of stewards.values()) await steward.close();
    await agent?.close();
    await redis?.dispose();
  });

  function stewardFor(mode: FailMode): TestSteward {
    const steward = stewards.get(mode);
    if (!steward) throw new Error(`no Steward in fail mode ${mode}`);
    return steward;
  }

  /** One Steward's agent under load through a fault. */
  interface Run {
    mode: FailMode;
    agentId: string;
    load: InvokeLoad;
  }

  /**
   * Loads an agent on each Steward, breaks Redis once the limits bite, keeps the load
   * going while it is away, brings it back and waits for a 429 from each Steward: the
   * limit enforced again. Answers what each load got and when Redis came back.
   */
  async function loadThroughFault(fault: { break(): Promise<void> | void; mend(): Promise<void> | void }) {
    const runs: Run[] = [];
    try {
      for (const mode of MODES) {
        const steward = stewardFor(mode);
        const agentId = await registerAgent(
          steward,
          agent.url,
          agentBody({
            rate_limit_config: { requests_per_minute: LIMIT },
            budget_config: { max_daily_cost: CAP, cost_per_execution: COST },
          }),
        );
        const send = injectSender(steward, agentId);
        runs.push({
          mode,
          agentId,
          load: startInvokeLoad(send, { ...LOAD, boundMs: BOUND_MS, phase: "up" }),
        });
      }
      const limited = (run: Run, since: number) =>
        run.load.outcomes.some((outcome) => outcome.sentAt >= since && outcome.answer?.status === 429);
      await until(() => runs.every((run) => limited(run, 0)));

      await fault.break();
      const downAt = Date.now();
      for (const run of runs) run.load.phase("down");
      await until(
        () =>
          Date.now() - downAt >= OUTAGE_MS &&
          runs.every((run) => countOf(run.load.outcomes, duringOutage) >= DOWN_ANSWERS),
        20_000,
      );

      // Until mend() resolves, the service may or may not answer yet: neither down nor back.
      for (const run of runs) run.load.phase("returning");
      await fault.mend();
      const backAt = Date.now();
      for (const run of runs) run.load.phase("back");
      await until(() => runs.every((run) => limited(run, backAt)), WINDOW_MS);
      const outcomes = await Promise.all(runs.map((run) => run.load.stop()));
      return { runs: runs.map((run, i) => ({ ...run, outcomes: outcomes[i] ?? [] })), backAt };
    } finally {
      await Promise.all(runs.map((run) => run.load.stop()));
    }
  }

  /** Whether an answer is what fail mode `mode` specifies for when it was sent and answered. */
  function answeredAsSpecified(mode: FailMode, outcome: LoadOutcome): boolean {
    const { answer } = outcome;
    if (!answer || outcome.endedAt - outcome.sentAt > BOUND_MS) return false;
    if (duringOutage(outcome)) {
      // Open: no limit checked, so no limit shown; the budget still decides. Closed: refused.
      return mode === "open"
        ? [200, 402].includes(answer.status) && answer.headers["x-ratelimit-limit"] === undefined
        : answer.status === 503 && errorCodeOf(answer) === "SERVICE_UNAVAILABLE";
    }
    // Around the fault either the limiter decided or the fail mode did.
    return [200, 402, 429, ...(mode === "closed" ? [503] : [])].includes(answer.status);
  }

  /** Successful calls past what the budget cap pays for, in the order they were answered. */
  function overBudget(outcomes: readonly LoadOutcome[]): LoadOutcome[] {
    return outcomes.filter((outcome) => outcome.answer?.status === 200).slice(PAID_CALLS);
  }

  /**
   * Calls Redis admitted after it came back, before the first 429, beyond the limit. A
   * burst across a minute boundary may take one call more (the previous bucket's weight
   * drops below 1 and the sliding count rounds down; see docs/rate-limits.md).
   */
  function overLimitAfterReturn(outcomes: readonly LoadOutcome[], backAt: number): LoadOutcome[] {
    const after = outcomes.filter((outcome) => outcome.sentAt >= backAt).sort((a, b) => a.sentAt - b.sentAt);
    const firstRefusal = after.find((outcome) => outcome.answer?.status === 429);
    const until429 = firstRefusal ? after.filter((outcome) => outcome.sentAt < firstRefusal.sentAt) : after;
    // An answer carrying the limit's headers is one Redis decided; a degraded one carries none.
    const admitted = until429.filter(
      ({ answer }) => answer && [200, 402].includes(answer.status) && answer.headers["x-ratelimit-limit"],
    );
    const end = firstRefusal?.sentAt ?? Date.now();
    const allowance = Math.floor(end / WINDOW_MS) > Math.floor(backAt / WINDOW_MS) ? 1 : 0;
    return admitted.slice(LIMIT + allowance);
  }

  /**
   * Answers with no record behind them. A fail-closed 503 names no invocation, so answers
   * are matched to the agent's records by outcome: each answer needs a record of its status.
   */
  async function unrecorded(steward: TestSteward, agentId: string, outcomes: readonly LoadOutcome[]) {
    const { rows } = await steward.steward.database.pool.query<{ status: string; count: number }>(
      "SELECT status, count(*)::int AS count FROM invocations WHERE external_agent_id = $1 GROUP BY status",
      [agentId],
    );
    const recorded = new Map(rows.map((row) => [row.status, row.count]));
    const answered = new Map<string, number>();
    for (const { answer } of outcomes) {
      if (!answer) continue;
      const status = RECORD_STATUS[answer.status] ?? `HTTP ${answer.status}`;
      answered.set(status, (answered.get(status) ?? 0) + 1);
    }
    let lost = 0;
    for (const [status, count] of answered) lost += Math.max(0, count - (recorded.get(status) ?? 0));
    return lost;
  }

  async function checkRun(
    context: TestContext,
    fault: string,
    run: Run & { outcomes: LoadOutcome[] },
    backAt: number,
  ) {
    const { mode, agentId, outcomes } = run;
    const steward = stewardFor(mode);
    const summary = `${fault}, fail ${mode}: ${statusSummary(outcomes)}`;

    // Soft, so the figures below still reach the table when one of these fails. The first
    // three check the fault was exercised: the limit bit before it, the load got answers
    // while Redis was away, and the limit bit again within a window of its return.
    expect
      .soft(
        countOf(outcomes, (outcome) => outcome.sentIn === "up" && outcome.answer?.status === 429),
        `${summary}: the limit never bit before the fault`,
      )
      .toBeGreaterThan(0);
    expect
      .soft(countOf(outcomes, duringOutage), `${summary}: answers sent and received while Redis was away`)
      .toBeGreaterThanOrEqual(DOWN_ANSWERS);
    const firstRefusal = outcomes.find(
      (outcome) => outcome.sentAt >= backAt && outcome.answer?.status === 429,
    );
    expect
      .soft(
        (firstRefusal?.endedAt ?? Number.POSITIVE_INFINITY) - backAt,
        `${summary}: no 429 within a window after Redis returned`,
      )
      .toBeLessThanOrEqual(WINDOW_MS);

    const budget = await steward.request({ method: "GET", url: `/api/v1/external-agents/${agentId}/budget` });
    expect(budget.statusCode, budget.body).toBe(200);
    const daily = budget.json().daily as { cost_used: number; reserved: number; limit: number };
    expect
      .soft(daily, `${summary}: budget overspent or still reserved`)
      .toMatchObject({ limit: CAP, reserved: 0 });
    expect.soft(daily.cost_used, `${summary}: budget overspent`).toBeLessThanOrEqual(CAP);
    if (mode === "open") {
      // Calls let through while Redis was away ran into the budget cap, which held.
      expect
        .soft(
          countOf(outcomes, (outcome) => outcome.answer?.status === 402),
          summary,
        )
        .toBeGreaterThan(0);
    }
    expect
      .soft(
        unexpectedAnswers(
          outcomes,
          () => BOUND_MS,
          (outcome) => answeredAsSpecified(mode, outcome),
        ),
        summary,
      )
      .toEqual([]);

    const violations = new Set([
      ...outcomes.filter((outcome) => !answeredAsSpecified(mode, outcome)),
      ...overBudget(outcomes),
      ...overLimitAfterReturn(outcomes, backAt),
    ]);
    tally(context, {
      fault: `${fault} under invoke load, fail mode ${mode}`,
      tried: outcomes.length,
      handled: outcomes.length - violations.size,
      lost: await unrecorded(steward, agentId, outcomes),
      leaked: leakedCredentials(outcomes),
    });
  }

  it("Redis stopped: bounded answers, fail mode applied, budget held, limit back within a window", async (context) => {
    const { runs, backAt } = await loadThroughFault({ break: () => redis.stop(), mend: () => redis.start() });
    for (const run of runs) await checkRun(context, "Redis stopped", run, backAt);
  });

  it("Redis frozen (SIGSTOP): bounded answers, fail mode applied, budget held, limit back within a window", async (context) => {
    const { runs, backAt } = await loadThroughFault({
      break: () => redis.freeze(),
      mend: () => redis.thaw(),
    });
    for (const run of runs) await checkRun(context, "Redis frozen (SIGSTOP)", run, backAt);
  });
});

describe("PostgreSQL stopped under invoke load", () => {
  /** A connection attempt waits at most this long (connectionTimeoutMillis in src/db/database.ts). */
  const DB_CONNECT_TIMEOUT_MS = 5_000;
  /** Every answer within: a connection attempt, plus the agent call's deadline, plus slack. */
  const BOUND_MS = DB_CONNECT_TIMEOUT_MS + INVOKE_TIMEOUT_MS + SLACK_MS;
  /**
   * A call sent while PostgreSQL is down fails at its first query, before the agent is
   * called (the call's record is written first): it waits for one connection attempt at
   * most — refused at once on loopback, never longer than the pool's connect timeout.
   */
  const DOWN_BOUND_MS = DB_CONNECT_TIMEOUT_MS + SLACK_MS;
  /** Successful calls before the fault, and after it, that show the load gets through. */
  const SUCCESSES = 10;
  /** How long Steward may take to use a restarted PostgreSQL again. */
  const RECOVERY_MS = 30_000;

  let postgres: RestartablePostgres;
  let agent: MockAgent;
  let platform: MockAgent;

  beforeAll(async () => {
    postgres = await startRestartablePostgres();
    agent = await startMockAgent();
    platform = await startMockAgent(() => ({ status: 200, body: "ok" }));
  });

  afterAll(async () => {
    await agent?.close();
    await platform?.close();
    await postgres?.dispose();
  });

  /** Registers an agent whose completed calls each queue a delivery to the platform stand-in (the outbox row). */
  async function registerDeliveringAgent(baseUrl: string, headers: Record<string, string>): Promise<string> {
    const registered = await fetch(`${baseUrl}/api/v1/external-agents`, {
      method: "POST",
      headers,
      body: JSON.stringify(
        agentBody({
          name: "pg-chaos",
          platform: "custom_http",
          webhook_url: agent.url,
          platform_config: { webhook_url: platform.url },
        }),
      ),
    });
    const body = await registered.text();
    if (registered.status !== 201) throw new Error(`registering the agent failed: ${body}`);
    return (JSON.parse(body) as { id: string }).id;
  }

  /** 2xx answers whose invocation has no success record, or no delivery queued in the outbox. */
  async function lostCalls(schema: string, outcomes: readonly LoadOutcome[]): Promise<number> {
    const accepted = outcomes.flatMap(({ answer }) =>
      answer && answer.status >= 200 && answer.status < 300 ? [invocationIdOf(answer) ?? ""] : [],
    );
    // A connection of its own: the restart dropped any opened before.
    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ id: string }>(
        `SELECT i.id FROM "${schema}".invocations i
          WHERE i.id = ANY($1::text[]) AND i.status = 'success' AND EXISTS (
            SELECT 1 FROM "${schema}".deliveries d WHERE d.invocation_id = i.id AND d.target = 'platform')`,
        [accepted],
      );
      return accepted.length - rows.length;
    } finally {
      await client.end();
    }
  }

  const boundOf = (outcome: LoadOutcome) => (outcome.sentIn === "down" ? DOWN_BOUND_MS : BOUND_MS);

  function answeredAsSpecified(outcome: LoadOutcome): boolean {
    const { answer } = outcome;
    if (!answer || outcome.endedAt - outcome.sentAt > boundOf(outcome)) return false;
    const unavailable = answer.status === 503 && errorCodeOf(answer) === "SERVICE_UNAVAILABLE";
    return duringOutage(outcome) ? unavailable : answer.status === 200 || unavailable;
  }

  /**
   * Runs a `steward serve` on the private cluster, in a schema of its own, under invoke
   * load through a stop of PostgreSQL in `mode`, and checks and tallies what the load got.
   * The process goes when the test ends, so it never lives through the next test's outage.
   */
  async function loadThroughStop(context: TestContext, mode: "immediate" | "fast", fault: string) {
    const { schema, headers, env } = stewardEnvironment({
      DATABASE_URL: postgres.url,
      STEWARD_INVOKE_TIMEOUT_MS: String(INVOKE_TIMEOUT_MS),
    });
    const { steward, url } = await startStewardServer(env);
    try {
      const send = httpSender(url, headers, await registerDeliveringAgent(url, headers));
      const exited = () => steward.child.exitCode !== null || steward.child.signalCode !== null;
      const load = startInvokeLoad(send, { ...LOAD, boundMs: BOUND_MS, phase: "up" });
      const successes = (since: number) =>
        countOf(load.outcomes, (outcome) => outcome.sentAt >= since && outcome.answer?.status === 200);
      // Every wait ends early when the process is gone: there is nothing left to wait for.
      const whileAlive = (check: () => boolean, timeoutMs?: number) =>
        until(() => exited() || check(), timeoutMs);
      let backAt = 0;
      try {
        await whileAlive(() => successes(0) >= SUCCESSES);

        await postgres.stop(mode);
        const downAt = Date.now();
        load.phase("down");
        await whileAlive(
          () => Date.now() - downAt >= OUTAGE_MS && countOf(load.outcomes, duringOutage) >= DOWN_ANSWERS,
          20_000,
        );

        // pg_ctl returns a little after the server accepts connections: neither down nor back.
        load.phase("returning");
        await postgres.start();
        backAt = Date.now();
        load.phase("back");
        await whileAlive(() => successes(backAt) >= SUCCESSES, RECOVERY_MS);
      } finally {
        await load.stop();
      }
      const outcomes = load.outcomes;
      const summary = `${fault}: ${statusSummary(outcomes)}`;

      // Soft, so the figures below still reach the table when Steward did not survive.
      expect.soft(exited(), `${summary}: Steward exited:\n${steward.output().slice(-3_000)}`).toBe(false);
      expect
        .soft(
          countOf(outcomes, (outcome) => outcome.sentIn === "up" && outcome.answer?.status === 200),
          `${summary}: successes before the fault`,
        )
        .toBeGreaterThanOrEqual(SUCCESSES);
      expect
        .soft(
          countOf(outcomes, duringOutage),
          `${summary}: answers sent and received while PostgreSQL was down`,
        )
        .toBeGreaterThanOrEqual(DOWN_ANSWERS);
      expect
        .soft(successes(backAt), `${summary}: successes after PostgreSQL came back`)
        .toBeGreaterThanOrEqual(SUCCESSES);
      expect.soft(unexpectedAnswers(outcomes, boundOf, answeredAsSpecified), summary).toEqual([]);
      tally(context, {
        fault,
        tried: outcomes.length,
        handled: countOf(outcomes, answeredAsSpecified),
        lost: await lostCalls(schema, outcomes),
        leaked: leakedCredentials(outcomes),
      });
    } finally {
      await steward.kill("SIGKILL");
    }
  }

  it("crashed (immediate stop): 503 while down, recovery without a restart, every 2xx recorded and queued", async (context) => {
    await loadThroughStop(context, "immediate", "PostgreSQL crashed (immediate stop) under invoke load");
  });

  it("shut down (fast stop): 503 while down, recovery without a restart, every 2xx recorded and queued", async (context) => {
    await loadThroughStop(context, "fast", "PostgreSQL shut down (fast stop) under invoke load");
  });
});

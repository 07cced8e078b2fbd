import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ABANDONED_MESSAGE } from "../../src/invocation/abandoned-calls.js";
import { until } from "../helpers/eventually.js";
import { type MockAgent, type MockHandler, type MockReply, startMockAgent } from "../helpers/mock-agent.js";
import type { ReceivedRequest } from "../helpers/received-request.js";
import { TEST_DATABASE_URL } from "../helpers/services.js";
import { type StewardProcess, startStewardServer, stewardEnvironment } from "../helpers/steward-process.js";
import { newCanary, sightings } from "./secret-search.js";
import { chaosSeed, seededRandom } from "./seeded-random.js";
import { tally } from "./tally.js";

/**
 * `steward serve` killed with SIGKILL at random moments — each while a call waits on the
 * agent and a result is out to the platform — then started again with the same settings,
 * three times over, with calls going on throughout. Afterwards: every answered call has
 * its record, no call stays `running` once the abandoned-call sweeper has run, the budget
 * holds no reservation and has spent exactly what the calls cost, and each result reached
 * the platform under one delivery id, sent again only when a kill cut its attempt.
 * `CHAOS_SEED=<n>` replays a run's kill points.
 */

const SEED = chaosSeed();
const KILLS = 3;
const CONCURRENCY = 6;
const COST_PER_CALL = 0.25;
const AGENT_TOKEN = newCanary("agent token");
const COMPLETED = new Set(["success", "failure", "timeout"]);

/** A stand-in's handler that answers after a pause, counting the requests it holds meanwhile. */
function holdingFor(pauseMs: () => number, reply: (request: ReceivedRequest) => MockReply) {
  const held = { count: 0 };
  const handler: MockHandler = async (request) => {
    held.count++;
    await new Promise((resolve) => setTimeout(resolve, pauseMs()));
    held.count--;
    return reply(request);
  };
  return { handler, held };
}

/** One invoke as the client saw it: its HTTP status and answer, or "cut" when the connection died. */
interface SentCall {
  input: string;
  status: number | "cut";
  /** The record the answer names: in its body, or in `error.details` of a refusal or failure. */
  invocationId?: string;
  outcome?: string;
}

interface InvokeAnswer {
  invocation_id?: string;
  status?: string;
  error?: { details?: { invocation_id?: string } };
}

/** What the platform received: each request with the ids it carried and when it arrived. */
interface Arrival {
  deliveryId: string;
  invocationId: string;
  at: number;
}

interface InvocationRecord {
  id: string;
  status: string;
  input: string;
  error_message: string | null;
  record: string;
}

interface DeliveryRecord {
  id: string;
  invocation_id: string;
  status: string;
  /** Claims made, including those a kill cut before their attempt was written. */
  attempts: number;
  delivered_at_ms: number | null;
  delivered_attempts: number;
}

describe("steward serve killed with SIGKILL during invokes and deliveries", () => {
  const random = seededRandom(SEED);
  const { schema, env, headers } = stewardEnvironment({
    // Five times the agent's longest pause, so a loaded machine does not turn calls into timeouts.
    STEWARD_INVOKE_TIMEOUT_MS: "5000",
    // Above the invoke timeout, so the sweeper closes only calls of a killed process.
    STEWARD_ABANDONED_CALL_AFTER_SECONDS: "7",
    STEWARD_DELIVERY_TIMEOUT_MS: "1500",
    // A claim cut by a kill counts as an attempt: room for those plus a slow answer or two.
    STEWARD_DELIVERY_RETRY_DELAYS: "500ms,1s,1s,1s,1s",
  });
  // Three calls in ten are slow, so a kill finds some waiting on the agent.
  const agentStandIn = holdingFor(
    () => (random() < 0.3 ? 400 + random() * 600 : 20 + random() * 130),
    () => ({ body: { result: "done", usage: { cost_usd: [0.05, 0.1, 0.2][Math.floor(random() * 3)] } } }),
  );
  const arrivals: Arrival[] = [];
  // Slow enough that the platform always has deliveries in flight while calls go on.
  const platformStandIn = holdingFor(
    () => 100 + random() * 300,
    () => ({ status: 200, body: { ok: true } }),
  );
  let agent: MockAgent;
  let platform: MockAgent;
  let database: pg.Client;
  // Chosen at the first start and kept, so clients find each restarted process where the last one was.
  let port: number | undefined;
  let current: StewardProcess | undefined;
  const started: StewardProcess[] = [];

  beforeAll(async () => {
    agent = await startMockAgent(agentStandIn.handler);
    platform = await startMockAgent((request, index) => {
      arrivals.push({
        deliveryId: String(request.headers["x-steward-delivery-id"]),
        invocationId: String(request.headers["webhook-id"]),
        at: Date.now(),
      });
      return platformStandIn.handler(request, index);
    });
    database = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await database.connect();
  });
  afterAll(async () => {
    await current?.kill("SIGKILL");
    await agent?.close();
    await platform?.close();
    await database?.end();
  });

  const base = () => `http://127.0.0.1:${port}/api/v1`;

  async function startSteward(): Promise<void> {
    const server = await startStewardServer(env, port);
    ({ steward: current, port } = server);
    started.push(current);
  }

  async function registerKilledAgent(): Promise<string> {
    const response = await fetch(`${base()}/external-agents`, {
      method: "POST",
      headers,
      body: JSON.stringify({
        name: "killed-mid-call",
        platform: "custom_http",
        webhook_url: agent.url,
        auth_type: "bearer_token",
        auth_config: { token: AGENT_TOKEN.value },
        platform_config: { webhook_url: platform.url },
        budget_config: { cost_per_execution: COST_PER_CALL, max_daily_cost: 100_000 },
      }),
    });
    expect(response.status, await response.clone().text()).toBe(201);
    return ((await response.json()) as { id: string }).id;
  }

  /** Keeps CONCURRENCY calls going until `stop.now`, recording how each one ended. */
  async function keepInvoking(agentId: string, sent: SentCall[], stop: { now: boolean }): Promise<void> {
    const caller = async () => {
      while (!stop.now) {
        const call: SentCall = { input: `call ${sent.length}`, status: "cut" };
        sent.push(call);
        try {
          const response = await fetch(`${base()}/external-agents/${agentId}/invoke`, {
            method: "POST",
            headers,
            body: JSON.stringify({ input: call.input }),
          });
          const answer = (await response.json()) as InvokeAnswer;
          Object.assign(call, {
            status: response.status,
            invocationId: answer.invocation_id ?? answer.error?.details?.invocation_id,
            outcome: answer.status,
          });
        } catch {
          // The kill cut the connection: the call stays "cut".
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, caller));
  }

  /** Calls until the agent has taken `calls` more; with `kill`, then SIGKILL mid-call and mid-delivery. */
  async function runRound(agentId: string, sent: SentCall[], calls: number, kill: boolean) {
    const stop = { now: false };
    const invoking = keepInvoking(agentId, sent, stop);
    const target = agent.requests.length + calls;
    await until(
      () =>
        agent.requests.length >= target &&
        (!kill || (agentStandIn.held.count > 0 && platformStandIn.held.count > 0)),
      20_000,
    );
    const landed = { midCall: agentStandIn.held.count > 0, midDelivery: platformStandIn.held.count > 0 };
    stop.now = true;
    if (kill) await current?.kill("SIGKILL");
    await invoking;
    return landed;
  }

  /** Work still open: calls running, deliveries not yet delivered, money still reserved. */
  const unsettled = async () =>
    Number(
      (
        await database.query(`SELECT (SELECT count(*) FROM ${schema}.invocations WHERE status = 'running')
                                   + (SELECT count(*) FROM ${schema}.deliveries WHERE status <> 'delivered')
                                   + (SELECT count(*) FROM ${schema}.budget_usage WHERE reserved <> 0) AS n`)
      ).rows[0].n,
    );

  const runningIds = async () =>
    (await database.query(`SELECT id FROM ${schema}.invocations WHERE status = 'running'`)).rows.map(
      (row) => row.id as string,
    );

  it("loses no answered call, leaves no reservation and sends each result under one delivery id", async (context) => {
    const sent: SentCall[] = [];
    const leftRunning = new Set<string>();
    const kills: Array<{ midCall: boolean; midDelivery: boolean }> = [];
    await startSteward();
    const agentId = await registerKilledAgent();
    for (let round = 0; round < KILLS; round++) {
      kills.push(await runRound(agentId, sent, 6 + Math.floor(random() * 15), true));
      for (const id of await runningIds()) leftRunning.add(id);
      await startSteward();
    }
    await runRound(agentId, sent, 10, false);
    // The sweeper's first pass comes one sweep interval after the start; deliveries a
    // kill cut wait for their claim's lease (2 × timeout + 5 s) to run out.
    await until(async () => (await unsettled()) === 0, 45_000);

    const invocations = (
      await database.query<InvocationRecord>(
        `SELECT id, status, request_body->>'input' AS input, error_message, row_to_json(i)::text AS record
           FROM ${schema}.invocations i`,
      )
    ).rows;
    const deliveries = (
      await database.query<DeliveryRecord>(
        `SELECT d.id, d.invocation_id, d.status, d.attempts,
                (extract(epoch FROM d.delivered_at) * 1000)::float8 AS delivered_at_ms,
                (SELECT count(*) FROM ${schema}.delivery_attempts a
                  WHERE a.delivery_id = d.id AND a.outcome = 'delivered')::int AS delivered_attempts
           FROM ${schema}.deliveries d WHERE d.target = 'platform'`,
      )
    ).rows;
    const seed = `seed ${SEED}`;

    const invoke = invokeFigures(sent, invocations, agent.requests);
    tally(context, {
      fault: `SIGKILL during invoke (${seed})`,
      tried: sent.length,
      handled: invoke.handled,
      lost: invoke.lost,
      leaked: sightings(AGENT_TOKEN, [
        ...started.map((steward) => steward.output()),
        ...invocations.map((row) => row.record),
      ]),
    });

    const abandoned = invocations.filter((row) => leftRunning.has(row.id));
    tally(context, {
      fault: `SIGKILL mid-call: abandoned call swept (${seed})`,
      tried: leftRunning.size,
      handled: abandoned.filter((row) => row.status === "error" && row.error_message === ABANDONED_MESSAGE)
        .length,
      lost: leftRunning.size - abandoned.length,
      leaked: sightings(
        AGENT_TOKEN,
        abandoned.map((row) => row.record),
      ),
    });

    // Handled: delivered once by Steward's record and received under one delivery id; the
    // platform may see that id again (at least once, docs/delivery.md) only for attempts a
    // kill cut, which the name counts as repeat arrivals.
    const delivery = deliveryFigures(invocations, deliveries, arrivals);
    tally(context, {
      fault: `SIGKILL during delivery (${seed}; ${delivery.repeats} repeats of cut attempts)`,
      tried: delivery.tried,
      handled: delivery.handled,
      lost: delivery.lost,
      leaked: sightings(
        AGENT_TOKEN,
        platform.requests.map((request) => JSON.stringify(request)),
      ),
    });
    context.expect
      .soft(delivery.duplicates, `results received beyond the repeats a kill explains, ${seed}`)
      .toBe(0);

    // Every kill cut a call at the agent and a delivery at the platform.
    expect(kills, seed).toEqual(Array(KILLS).fill({ midCall: true, midDelivery: true }));
    // The agent saw the credential, so its absence elsewhere means something.
    expect(
      agent.requests.every((request) => request.headers.authorization === `Bearer ${AGENT_TOKEN.value}`),
      seed,
    ).toBe(true);

    // No reservation is left behind, and each budget row spent exactly what the calls cost.
    const budget = await database.query(
      `SELECT scope, period, sum(reserved)::float8 AS reserved, sum(spent)::float8 AS spent,
              (SELECT coalesce(sum(cost_usd), 0)::float8 FROM ${schema}.invocations) AS cost
         FROM ${schema}.budget_usage GROUP BY scope, period ORDER BY scope, period`,
    );
    const cost = Number(budget.rows[0]?.cost);
    expect(cost, seed).toBeGreaterThan(0);
    expect(budget.rows, seed).toEqual(
      ["agent", "organization"].flatMap((scope) =>
        ["day", "month"].map((period) => ({ scope, period, reserved: 0, spent: cost, cost })),
      ),
    );
  });
});

/**
 * An answered call must have the final record its answer names, made for its input, with
 * the status a 200 reported (every refusal or failure names its record in
 * `error.details.invocation_id`); a cut one may have none, or a final one. An answer whose
 * record is missing, or a call the agent received without a record, is lost.
 */
function invokeFigures(sent: SentCall[], invocations: InvocationRecord[], agentRequests: ReceivedRequest[]) {
  const byInput = new Map(invocations.map((row) => [row.input, row]));
  const byId = new Map(invocations.map((row) => [row.id, row]));
  let handled = 0;
  let lost = 0;
  for (const call of sent) {
    if (call.status === "cut") {
      if (byInput.get(call.input)?.status !== "running") handled++;
      continue;
    }
    const record = call.invocationId === undefined ? undefined : byId.get(call.invocationId);
    if (call.invocationId !== undefined && !record) lost++;
    else if (
      record?.input === call.input &&
      record.status !== "running" &&
      (call.status !== 200 || record.status === call.outcome)
    )
      handled++;
  }
  const reached = new Set(agentRequests.map((request) => String(request.body.invocation_id)));
  lost += [...reached].filter((id) => !byId.has(id)).length;
  return { handled, lost };
}

/**
 * Each call that reached the agent owes the platform one delivery. It is handled when it
 * is delivered, with one successful attempt in its log, and arrived under that one id.
 * A cut attempt is sent again (docs/delivery.md: at least once, same id), so an id may
 * arrive more than once, but never more often than it was claimed, never after Steward
 * recorded it as delivered, and never under a second id. `repeats` counts the arrivals of
 * an id beyond its first; `duplicates` the results received beyond what that allows.
 */
function deliveryFigures(invocations: InvocationRecord[], deliveries: DeliveryRecord[], arrivals: Arrival[]) {
  const completed = invocations.filter((row) => COMPLETED.has(row.status));
  const rowsOf = groupBy(deliveries, (delivery) => delivery.invocation_id);
  const arrivalsOf = groupBy(arrivals, (arrival) => arrival.deliveryId);
  const idsOf = groupBy(arrivals, (arrival) => arrival.invocationId);
  let handled = 0;
  let lost = 0;
  let duplicates = 0;
  let repeats = 0;
  for (const invocation of completed) {
    const rows = rowsOf.get(invocation.id) ?? [];
    const delivery = rows[0];
    const arrived = delivery ? (arrivalsOf.get(delivery.id) ?? []) : [];
    if (!delivery || arrived.length === 0) {
      lost++;
      continue;
    }
    repeats += arrived.length - 1;
    const duplicated =
      rows.length > 1 ||
      new Set(idsOf.get(invocation.id)?.map((arrival) => arrival.deliveryId)).size > 1 ||
      arrived.length > delivery.attempts ||
      arrived.some((arrival) => arrival.at > (delivery.delivered_at_ms ?? Number.POSITIVE_INFINITY));
    if (duplicated) duplicates++;
    else if (delivery.status === "delivered" && delivery.delivered_attempts === 1) handled++;
  }
  return { tried: completed.length, handled, lost, duplicates, repeats };
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  return groups;
}

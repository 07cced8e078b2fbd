import { randomBytes } from "node:crypto";
import pg from "pg";
import { Pool } from "undici";
import { type BenchProcess, startScript } from "../child.js";
import { INVOKE_BODY } from "../load.js";
import type { BenchSettings } from "../settings.js";
import { percentile } from "../stats.js";
import { type BenchSteward, startSteward } from "../steward.js";

export interface DeliveryFigures {
  /** Platform deliveries committed in one transaction, one per seeded real invocation, and drained to the sink. */
  backlog: number;
  /** Agents (platform endpoints) the backlog was spread over, so the 4-per-endpoint cap is not what is measured. */
  endpoints: number;
  /** Backlog rows over the time from their commit to the last one's arrival at the sink. */
  deliveriesPerSecond: number;
  /**
   * Seconds from the backlog's commit to the last delivery's arrival at the sink. Nothing
   * wakes the worker for rows written behind Steward's back: this includes its next poll (≤ 0.5 s).
   */
  drainSeconds: number;
  /** Arrivals beyond the first of a backlog row (0 in a good run). */
  duplicates: number;
  /** Backlog rows the sink never saw (0 in a good run). */
  missing: number;
  /** Backlog rows not `delivered` once the sink had them all (0 in a good run). */
  notDelivered: number;
  /** Sequential invocations (one connection) whose delivery was timed. */
  latencySamples: number;
  /** Median time from an invoke's response to its delivery's arrival at the sink. */
  invokeToDeliveryP50Ms: number;
  /** 99th percentile of the same. */
  invokeToDeliveryP99Ms: number;
  /** Peak resident memory of the Steward process over the run. */
  peakRssMb: number;
}

/** Enough endpoints that 4 in flight to each is never what caps the worker. */
const BACKLOG_AGENTS = 32;
/** Connections seeding the invocations the backlog reports on. */
const SEED_CONNECTIONS = 16;
/** A delivery run that stops making progress for this long has lost something. */
const STALL_MS = 30_000;

/** Wall-clock time at sub-millisecond resolution, as the sink stamps arrivals. */
const now = () => performance.timeOrigin + performance.now();

/** [delivery id, invocation id, arrival] as the sink records them. */
type Arrival = [string, string, number];

/**
 * The delivery run: how fast Steward's worker drains an outbox backlog to a local sink,
 * and how long after an invoke's answer its result reaches the platform. The backlog is
 * one more platform delivery of each of `settings.deliveries` real invocations of
 * BACKLOG_AGENTS custom_http agents, written in one transaction so it appears at once.
 */
export async function runDelivery(settings: BenchSettings, agentUrl: string): Promise<DeliveryFigures> {
  const sink = await startScript("delivery-sink", "bench/servers/delivery-sink.ts");
  const steward = await startSteward(settings, "postgres", "steward-delivery");
  const database = new pg.Client({ connectionString: settings.databaseUrl });
  await database.connect();
  try {
    const backlogAgents: string[] = [];
    for (let i = 0; i < BACKLOG_AGENTS; i++)
      backlogAgents.push(await createDeliveringAgent(steward, agentUrl, sink));
    const latencyAgent = await createDeliveringAgent(steward, agentUrl, sink);

    // Real invocations, one for each backlog row to report on (as each real delivery does);
    // their own deliveries warm Steward's invoke and delivery paths.
    const invocations = await seedInvocations(steward, backlogAgents, settings.deliveries);
    await waitForArrivals(sink, invocations.length);
    const latency = await invokeToDelivery(steward, sink, latencyAgent, settings.roundSeconds);
    const drain = await drainBacklog(database, steward.schema, sink, invocations);
    return {
      backlog: invocations.length,
      endpoints: BACKLOG_AGENTS,
      ...drain,
      latencySamples: latency.length,
      invokeToDeliveryP50Ms: percentile(latency, 50),
      invokeToDeliveryP99Ms: percentile(latency, 99),
      peakRssMb: steward.process.peakRssMb(),
    };
  } finally {
    await database.end();
    await steward.stop();
    await sink.stop();
  }
}

/** A custom_http agent: invoked at the agent stand-in, its results delivered to the sink. */
async function createDeliveringAgent(steward: BenchSteward, agentUrl: string, sink: BenchProcess) {
  const name = `bench-delivering-${randomBytes(3).toString("hex")}`;
  const agent = await steward.api<{ id: string }>("POST", "/api/v1/external-agents", {
    name,
    platform: "custom_http",
    webhook_url: `${agentUrl}/invoke`,
    platform_config: { webhook_url: `${sink.url}/${name}` },
    rate_limit_config: { requests_per_minute: 100_000_000, requests_per_hour: 100_000_000 },
  });
  return agent.id;
}

/** Invokes over `connections` connections, noting when each answer was read. */
function invokeClient(steward: BenchSteward, connections: number) {
  const pool = new Pool(steward.process.url, { connections });
  return {
    async invoke(agentId: string): Promise<{ invocationId: string; answeredAt: number }> {
      const answer = await pool.request({
        method: "POST",
        path: `/api/v1/external-agents/${agentId}/invoke`,
        headers: { "content-type": "application/json", authorization: `Bearer ${steward.adminKey}` },
        body: INVOKE_BODY,
      });
      const body = (await answer.body.json()) as { invocation_id?: string };
      const answeredAt = now();
      if (answer.statusCode !== 200 || !body.invocation_id) {
        throw new Error(`invoke answered ${answer.statusCode}: ${JSON.stringify(body)}`);
      }
      return { invocationId: body.invocation_id, answeredAt };
    },
    close: () => pool.close(),
  };
}

/** `count` invocations spread round-robin over `agents`, several at a time; answers their ids. */
async function seedInvocations(steward: BenchSteward, agents: readonly string[], count: number) {
  const client = invokeClient(steward, SEED_CONNECTIONS);
  const invocations: string[] = [];
  let next = 0;
  const invokeInTurn = async () => {
    while (next < count) {
      const agentId = agents[next++ % agents.length] as string;
      invocations.push((await client.invoke(agentId)).invocationId);
    }
  };
  try {
    await Promise.all(Array.from({ length: SEED_CONNECTIONS }, invokeInTurn));
  } finally {
    await client.close();
  }
  return invocations;
}

/**
 * For `seconds`, invokes one call after another over one connection; answers each one's
 * time from its answer to its delivery's arrival at the sink.
 */
async function invokeToDelivery(
  steward: BenchSteward,
  sink: BenchProcess,
  agentId: string,
  seconds: number,
): Promise<number[]> {
  const answeredAt = new Map<string, number>();
  const arrivedBefore = await arrivalCount(sink);
  const client = invokeClient(steward, 1);
  try {
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end) {
      const { invocationId, answeredAt: at } = await client.invoke(agentId);
      answeredAt.set(invocationId, at);
    }
  } finally {
    await client.close();
  }
  await waitForArrivals(sink, arrivedBefore + answeredAt.size);
  const latencies: number[] = [];
  for (const [, invocationId, arrivedAt] of await arrivals(sink)) {
    const at = answeredAt.get(invocationId);
    if (at !== undefined) latencies.push(arrivedAt - at);
  }
  if (latencies.length !== answeredAt.size) {
    throw new Error(`${answeredAt.size} invocations but ${latencies.length} deliveries reached the sink`);
  }
  return latencies;
}

/**
 * Commits a platform delivery of each seeded invocation (so spread over every backlog
 * agent) in one transaction, then waits for the sink to have them all and checks each
 * arrived once and ended `delivered`.
 */
async function drainBacklog(
  database: pg.Client,
  schema: string,
  sink: BenchProcess,
  invocations: readonly string[],
): Promise<
  Pick<DeliveryFigures, "deliveriesPerSecond" | "drainSeconds" | "duplicates" | "missing" | "notDelivered">
> {
  const count = invocations.length;
  const ids = invocations.map(() => `dlv_${randomBytes(13).toString("hex").slice(0, 26)}`);
  const arrivedBefore = await arrivalCount(sink);
  await database.query("BEGIN");
  await database.query(
    `INSERT INTO "${schema}".deliveries
            (id, organization_id, target, event_type, external_agent_id, invocation_id, platform)
     SELECT backlog.id, i.organization_id, 'platform', 'external_agent.invocation.completed',
            i.external_agent_id, i.id, 'custom_http'
       FROM unnest($1::text[], $2::text[]) AS backlog (id, invocation_id)
       JOIN "${schema}".invocations i ON i.id = backlog.invocation_id`,
    [ids, invocations],
  );
  await database.query("COMMIT");
  const committedAt = now();

  await waitForArrivals(sink, arrivedBefore + count);
  const backlog = new Set(ids);
  const seen = new Map<string, number>();
  let lastArrival = committedAt;
  for (const [deliveryId, , arrivedAt] of await arrivals(sink)) {
    if (!backlog.has(deliveryId)) continue;
    seen.set(deliveryId, (seen.get(deliveryId) ?? 0) + 1);
    lastArrival = Math.max(lastArrival, arrivedAt);
  }
  const drainSeconds = (lastArrival - committedAt) / 1000;
  return {
    deliveriesPerSecond: Math.round(count / drainSeconds),
    drainSeconds,
    duplicates: [...seen.values()].reduce((sum, times) => sum + times - 1, 0),
    missing: count - seen.size,
    notDelivered: await undeliveredOnceRecorded(database, schema, ids),
  };
}

/** Backlog rows not `delivered`, once the worker has recorded the attempts still in hand. */
async function undeliveredOnceRecorded(database: pg.Client, schema: string, ids: readonly string[]) {
  const deadline = Date.now() + STALL_MS;
  for (;;) {
    const { rows } = await database.query<{ status: string; count: number }>(
      `SELECT status, count(*)::int AS count FROM "${schema}".deliveries WHERE id = ANY($1) GROUP BY status`,
      [ids],
    );
    const inHand = rows.some((row) => row.status === "delivering" || row.status === "pending");
    if (!inHand || Date.now() > deadline) {
      return rows.filter((row) => row.status !== "delivered").reduce((sum, row) => sum + row.count, 0);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function arrivalCount(sink: BenchProcess): Promise<number> {
  return Number(await (await fetch(`${sink.url}/deliveries/count`)).text());
}

async function arrivals(sink: BenchProcess): Promise<Arrival[]> {
  return (await (await fetch(`${sink.url}/deliveries`)).json()) as Arrival[];
}

/** Waits until the sink has recorded `count` arrivals; fails if they stop coming. */
async function waitForArrivals(sink: BenchProcess, count: number): Promise<void> {
  let seen = -1;
  let progressAt = Date.now();
  for (;;) {
    const arrived = await arrivalCount(sink);
    if (arrived >= count) return;
    if (arrived > seen) {
      seen = arrived;
      progressAt = Date.now();
    } else if (Date.now() - progressAt > STALL_MS) {
      throw new Error(`the sink has ${arrived} of ${count} deliveries and none came for ${STALL_MS} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

import { randomBytes } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Redis } from "ioredis";
import pg from "pg";
import { jobSubmission, structuredBytes } from "../../src/executor/job-event.js";
import type { BenchSettings } from "../settings.js";
import { percentile } from "../stats.js";
import { type BenchSteward, startSteward } from "../steward.js";

/**
 * Jobs one Steward process runs at once (`STEWARD_JOBS_CONCURRENCY`, default 4). A trivial job
 * spends most of its life waiting on round trips to PostgreSQL, NATS and Redis, and jobs
 * running together share their checkpoint and event writes; an operator running many short
 * jobs raises it, and so does the bench, which reports the value it used.
 */
const BENCH_CONCURRENCY = 64;
/** Job publishes awaiting JetStream's acknowledgement at once: "as fast as JetStream takes them". */
const PUBLISH_WINDOW = 512;
/** Jobs run before measuring, to warm the JIT, the pools and the consumer; not counted. */
const WARMUP_JOBS = 200;
/**
 * The latency run publishes at this fraction of the throughput just measured: well below
 * it, so that waiting in the queue behind other jobs does not count, even when the shared
 * machine slows down.
 */
const PACED_LOAD = 0.25;

/**
 * A one-node graph: its output carries the time the node ran (JSONata `$millis()`, Steward's
 * clock, whole milliseconds), which the stream latency is measured from.
 */
const TRIVIAL_GRAPH = {
  name: "bench-trivial",
  nodes: [{ id: "stamp", type: "transform", expression: "{'n': input.n, 'at': $millis()}" }],
  edges: [
    { from: "__start__", to: "stamp" },
    { from: "stamp", to: "__end__" },
  ],
};

export interface ExecutorFigures {
  /** STEWARD_JOBS_CONCURRENCY the Steward process ran with. */
  concurrency: number;
  /** Jobs of the throughput run, published at once. */
  jobs: number;
  /** Throughput run: jobs divided by the time from the first publish to the last completed event. */
  jobsPerSecond: number;
  /** CPU time Steward used per job of the throughput run: steadier than jobs/s on a busy machine. */
  cpuMsPerJob: number;
  /** Jobs of the latency run, published at a steady rate. */
  pacedJobs: number;
  /** The latency run's publish rate: a quarter of the throughput measured just before. */
  pacedJobsPerSecond: number;
  /** Latency run: from a job's publish (bench clock) to the arrival of its completed event, median. */
  p50Ms: number;
  /** Same, 99th percentile. */
  p99Ms: number;
  /** From a node's run to its node_end event at a Redis subscriber (see StreamWatcher), median. */
  streamP50Ms: number;
  /** Same, 99th percentile. */
  streamP99Ms: number;
  /** Completed result events received over both runs and the warm-up, each job id once. */
  completed: number;
  /** Failed result events: zero in a good run. */
  failed: number;
  /** Jobs the database holds as completed: equal to `completed` in a good run. */
  storedCompleted: number;
  /** The most resident memory Steward held during the run, in MB. */
  peakRssMb: number;
}

/**
 * The executor over JetStream with checkpoints in PostgreSQL: a burst of trivial jobs for
 * throughput, then a steady stream at a quarter of that rate for publish-to-result latency and
 * stream-event latency. Steward runs with STEWARD_JOBS_CONCURRENCY = `concurrency`.
 */
export async function runExecutor(
  settings: BenchSettings,
  concurrency = BENCH_CONCURRENCY,
): Promise<ExecutorFigures> {
  const run = randomBytes(4).toString("hex");
  const stream = `BENCH_${run.toUpperCase()}`;
  const prefix = `bench${run}.agent`;
  const nats = await connect({ servers: settings.natsUrl });
  // Subscribed before anything is published, so no result can pass unseen.
  const results = new ResultWatcher(nats, prefix);
  let steward: BenchSteward | undefined;
  try {
    steward = await startSteward(settings, "postgres", "steward-executor", {
      NATS_URL: settings.natsUrl,
      STEWARD_JOBS_STREAM: stream,
      STEWARD_JOBS_SUBJECT_PREFIX: prefix,
      STEWARD_JOBS_CONSUMER: `bench-workers-${run}`,
      STEWARD_JOBS_CONCURRENCY: String(concurrency),
    });
    const publisher = new JobPublisher(nats, `${prefix}.execute.bench`, run);
    const warmup = Math.min(WARMUP_JOBS, settings.jobs);
    await results.completion(await publisher.burst(publisher.prepare(warmup)));

    const jobs = settings.jobs;
    const burst = publisher.prepare(jobs);
    const start = performance.now();
    const cpuBefore = steward.process.cpuSeconds();
    await publisher.burst(burst);
    const jobsPerSecond = jobs / (((await results.completion(burst)) - start) / 1000);
    const cpuMsPerJob = ((steward.process.cpuSeconds() - cpuBefore) * 1000) / jobs;

    const pacedJobs = Math.max(20, Math.round(jobs / 5));
    const pacedJobsPerSecond = Math.max(1, Math.round(jobsPerSecond * PACED_LOAD));
    const paced = publisher.prepare(pacedJobs);
    const events = await StreamWatcher.subscribe(settings.redisUrl, paced.ids);
    try {
      await publisher.paced(paced, pacedJobsPerSecond);
      await results.completion(paced);
      await events.completion();
    } finally {
      await events.close();
    }
    const latencies = paced.ids.map(
      (id) => (results.arrivals.get(id) as number) - (paced.sentAt.get(id) as number),
    );
    const total = warmup + jobs + pacedJobs;
    if (results.failed > 0) throw new Error(`${results.failed} of ${total} jobs failed`);
    if (results.duplicates > 0) throw new Error(`${results.duplicates} job ids announced more than once`);
    if (results.arrivals.size !== total)
      throw new Error(`${results.arrivals.size} results for ${total} jobs`);
    return {
      concurrency,
      jobs,
      jobsPerSecond,
      cpuMsPerJob,
      pacedJobs,
      pacedJobsPerSecond,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      streamP50Ms: percentile(events.latencies, 50),
      streamP99Ms: percentile(events.latencies, 99),
      completed: results.arrivals.size,
      failed: results.failed,
      storedCompleted: await countCompleted(settings.databaseUrl, steward.schema),
      peakRssMb: steward.process.peakRssMb(),
    };
  } finally {
    await steward?.stop();
    const manager = await jetstreamManager(nats);
    for (const name of [stream, `${stream}_STATUS`]) await manager.streams.delete(name).catch(() => false);
    await nats.drain();
  }
}

/** Jobs ready to publish: their ids, CloudEvent bytes (built ahead, off the clock) and publish times. */
interface JobBatch {
  ids: string[];
  bytes: Uint8Array[];
  /** performance.now() just before each job's publish. */
  sentAt: Map<string, number>;
}

/** Publishes trivial jobs to JetStream the way any producer would: one CloudEvent per job, msgID = job id. */
class JobPublisher {
  private readonly js;
  private next = 0;

  constructor(
    nats: NatsConnection,
    private readonly subject: string,
    private readonly run: string,
  ) {
    this.js = jetstream(nats);
  }

  prepare(count: number): JobBatch {
    const ids: string[] = [];
    const bytes: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      const jobId = `bench-${this.run}-${this.next++}`;
      const event = jobSubmission(
        {
          job_id: jobId,
          trace_id: randomBytes(16).toString("hex"),
          agent_definition: TRIVIAL_GRAPH,
          input_payload: { n: i },
        },
        "steward-bench",
      );
      ids.push(jobId);
      bytes.push(structuredBytes(event));
    }
    return { ids, bytes, sentAt: new Map() };
  }

  /** Publishes the whole batch with up to PUBLISH_WINDOW acknowledgements outstanding. */
  async burst(batch: JobBatch): Promise<JobBatch> {
    const outstanding = new Set<Promise<unknown>>();
    for (let i = 0; i < batch.ids.length; i++) {
      if (outstanding.size >= PUBLISH_WINDOW) await Promise.race(outstanding);
      const published = this.publish(batch, i).finally(() => outstanding.delete(published));
      outstanding.add(published);
    }
    await Promise.all(outstanding);
    return batch;
  }

  /** Publishes one job every 1/rate seconds, catching up when the timer fires late. */
  async paced(batch: JobBatch, perSecond: number): Promise<void> {
    const start = performance.now();
    const pending: Promise<unknown>[] = [];
    let i = 0;
    while (i < batch.ids.length) {
      const due = Math.min(
        batch.ids.length,
        Math.floor(((performance.now() - start) / 1000) * perSecond) + 1,
      );
      while (i < due) pending.push(this.publish(batch, i++));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(pending);
  }

  private publish(batch: JobBatch, index: number) {
    const id = batch.ids[index] as string;
    batch.sentAt.set(id, performance.now());
    return this.js.publish(this.subject, batch.bytes[index] as Uint8Array, { msgID: id });
  }
}

/** Result events as any subscriber sees them: when each job's completed event arrived. */
class ResultWatcher {
  /** performance.now() at the arrival of each job's completed event. */
  readonly arrivals = new Map<string, number>();
  failed = 0;
  duplicates = 0;

  constructor(nats: NatsConnection, prefix: string) {
    nats.subscribe(`${prefix}.status.completed`, {
      callback: (_error, message) => {
        const at = performance.now();
        const { subject } = message.json<{ subject: string }>();
        if (this.arrivals.has(subject)) this.duplicates++;
        else this.arrivals.set(subject, at);
      },
    });
    nats.subscribe(`${prefix}.status.failed`, {
      callback: () => {
        this.failed++;
      },
    });
  }

  /** When the batch's last completed event arrived; throws when results stop coming for STALL_MS. */
  async completion(batch: JobBatch): Promise<number> {
    await waitFor(
      () => this.failed > 0 || batch.ids.every((id) => this.arrivals.has(id)),
      () => this.arrivals.size,
    );
    if (this.failed > 0) throw new Error(`${this.failed} jobs failed`);
    return Math.max(...batch.ids.map((id) => this.arrivals.get(id) as number));
  }
}

/**
 * Stream event latency: from the moment a job's node ran — its output's `at`, JSONata's
 * `$millis()` on Steward's wall clock, in whole milliseconds — to the arrival of that node's
 * `node_end` event at a subscriber of `langgraph:stream:{job_id}` on Redis, on the bench's wall
 * clock (`performance.timeOrigin + performance.now()`). Both clocks are this machine's; the
 * whole-millisecond start makes a sample up to 1 ms longer than it was. The span covers what
 * every event goes through: its storage in PostgreSQL (after the job's earlier events, as
 * events go out in order) and its Redis publish.
 */
class StreamWatcher {
  readonly latencies: number[] = [];
  private readonly waiting: Set<string>;

  private constructor(
    private readonly redis: Redis,
    ids: readonly string[],
  ) {
    this.waiting = new Set(ids);
    redis.on("message", (channel: string, message: string) => {
      const arrived = performance.timeOrigin + performance.now();
      const event = JSON.parse(message) as { event_type: string; data: { output?: { at?: number } } };
      const at = event.data.output?.at;
      if (event.event_type !== "node_end" || typeof at !== "number") return;
      this.latencies.push(arrived - at);
      this.waiting.delete(channel.slice(CHANNEL_PREFIX.length));
    });
  }

  static async subscribe(url: string, ids: readonly string[]): Promise<StreamWatcher> {
    const redis = new Redis(url);
    const watcher = new StreamWatcher(redis, ids);
    await redis.subscribe(...ids.map((id) => `${CHANNEL_PREFIX}${id}`));
    return watcher;
  }

  /** Resolves once every job's node_end has arrived. */
  async completion(): Promise<void> {
    await waitFor(
      () => this.waiting.size === 0,
      () => this.latencies.length,
    );
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

/** The channel name of docs/executor.md, without Steward's key prefix. */
const CHANNEL_PREFIX = "langgraph:stream:";
/** A run that makes no progress for this long has lost something: fail rather than hang. */
const STALL_MS = 30_000;

/** Polls `done` every few milliseconds; gives up when `progress` stops changing for STALL_MS. */
async function waitFor(done: () => boolean, progress: () => number): Promise<void> {
  let last = progress();
  let lastChange = performance.now();
  while (!done()) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    const now = progress();
    if (now !== last) {
      last = now;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > STALL_MS) {
      throw new Error(`no progress for ${STALL_MS / 1000} s (${now} so far)`);
    }
  }
}

/** Jobs the run's schema holds as completed, read behind the API. */
async function countCompleted(databaseUrl: string, schema: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ count: number }>(
      `SELECT count(*)::int AS count FROM "${schema}".jobs WHERE status = 'completed'`,
    );
    return rows[0]?.count ?? 0;
  } finally {
    await client.end();
  }
}

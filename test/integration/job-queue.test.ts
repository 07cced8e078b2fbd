import { randomBytes } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection, nanos } from "@nats-io/transport-node";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import {
  type JobDelivery,
  JobQueue,
  type JobQueueSettings,
  redeliveryDelayMs,
} from "../../src/executor/job-queue.js";
import { until } from "../helpers/eventually.js";
import { TEST_NATS_URL } from "../helpers/services.js";

// The real NATS with JetStream of this machine: a missing server fails these tests, never skips them.
const RUN = randomBytes(3).toString("hex");
const logger = pino({ level: "silent" });
const encoder = new TextEncoder();
const decoder = new TextDecoder();

let adminConnection: NatsConnection | undefined;
const streams: string[] = [];
const queues: JobQueue[] = [];
let counter = 0;

/** Settings naming a stream, prefix and consumer no other test uses, so tests share no messages. */
function freshSettings(overrides: Partial<JobQueueSettings> = {}): JobQueueSettings {
  const id = `${RUN}_${++counter}`;
  const settings = {
    url: TEST_NATS_URL,
    stream: `T_${id}`,
    subjectPrefix: `t${id}.agent`,
    consumer: `workers_${id}`,
    ackWaitMs: 2_000,
    maxDeliver: 3,
    concurrency: 2,
    ...overrides,
  };
  streams.push(settings.stream, `${settings.stream}_STATUS`);
  return settings;
}

async function openQueue(settings: JobQueueSettings): Promise<JobQueue> {
  const queue = await JobQueue.connect(settings, logger);
  queues.push(queue);
  return queue;
}

async function readyQueue(overrides: Partial<JobQueueSettings> = {}): Promise<JobQueue> {
  const queue = await openQueue(freshSettings(overrides));
  await queue.ensure();
  return queue;
}

const text = (delivery: JobDelivery) => decoder.decode(delivery.data);

/** Connected in the tests, not in a hook, so a missing server fails every test instead of skipping it. */
async function admin(): Promise<NatsConnection> {
  adminConnection ??= await connect({ servers: TEST_NATS_URL });
  return adminConnection;
}

afterAll(async () => {
  for (const queue of queues) await queue.close();
  if (!adminConnection) return;
  const jsm = await jetstreamManager(adminConnection);
  for (const stream of streams) await jsm.streams.delete(stream).catch(() => {});
  await adminConnection.close();
});

describe("JobQueue.ensure", () => {
  it("creates both streams and the consumer, is idempotent (also concurrently) and updates ack_wait", async () => {
    const settings = freshSettings();
    const [first, second] = await Promise.all([openQueue(settings), openQueue(settings)]);
    await Promise.all([first.ensure(), second.ensure()]);
    await first.ensure();

    const jsm = await jetstreamManager(await admin());
    const jobs = await jsm.streams.info(settings.stream);
    expect(jobs.config.subjects).toEqual([`${settings.subjectPrefix}.execute.*`]);
    expect(jobs.config.duplicate_window).toBeGreaterThan(0);
    const status = await jsm.streams.info(`${settings.stream}_STATUS`);
    expect(status.config.duplicate_window).toBe(nanos(120_000));
    let consumer = await jsm.consumers.info(settings.stream, settings.consumer);
    expect(consumer.config.ack_wait).toBe(nanos(2_000));
    expect(consumer.config.max_deliver).toBe(3);
    expect(consumer.config.ack_policy).toBe("explicit");

    const changed = await openQueue({ ...settings, ackWaitMs: 3_000, maxDeliver: 5 });
    await changed.ensure();
    consumer = await jsm.consumers.info(settings.stream, settings.consumer);
    expect(consumer.config.ack_wait).toBe(nanos(3_000));
    expect(consumer.config.max_deliver).toBe(5);
  });

  it("updates a stream that already exists with another config", async () => {
    const settings = freshSettings();
    const jsm = await jetstreamManager(await admin());
    const status = `${settings.stream}_STATUS`;
    await jsm.streams.add({
      name: status,
      subjects: [`${settings.subjectPrefix}.results.>`],
      duplicate_window: nanos(10_000),
      // A 2.9 server refuses to add or change republish on update; only other fields can move.
      republish: { src: `${settings.subjectPrefix}.results.>`, dest: `${settings.subjectPrefix}.status.>` },
    });
    const queue = await openQueue(settings);
    await queue.ensure();
    const info = await jsm.streams.info(status);
    expect(info.config.duplicate_window).toBe(nanos(120_000));
    expect(info.config.republish?.dest).toBe(`${settings.subjectPrefix}.status.>`);
  });
});

describe("JobQueue delivery", () => {
  it("delivers a published job once; after ack nothing is pending and the job leaves the stream", async () => {
    const settings = freshSettings();
    const queue = await openQueue(settings);
    await queue.ensure();
    const seen: JobDelivery[] = [];
    const consumer = queue.consume(async (delivery) => {
      seen.push(delivery);
      delivery.ack();
    });
    expect(await queue.publishJob("run", encoder.encode("job-1"), "job_1", { "x-org": "org_1" })).toEqual({
      duplicate: false,
    });
    await until(async () => seen.length === 1 && (await queue.pending()).ackPending === 0);
    await consumer.stop();

    expect(seen).toHaveLength(1);
    const [delivery] = seen as [JobDelivery];
    expect(text(delivery)).toBe("job-1");
    expect(delivery.subject).toBe(`${settings.subjectPrefix}.execute.run`);
    expect(delivery.headers["x-org"]).toEqual(["org_1"]);
    expect(delivery.headers["Nats-Msg-Id"]).toEqual(["job_1"]);
    expect(delivery.deliveryCount).toBe(1);
    expect(delivery.maxDeliver).toBe(3);
    expect(await queue.pending()).toEqual({ pending: 0, ackPending: 0 });
    // Work-queue retention: an acked job is removed, so it can never be redelivered.
    const jsm = await jetstreamManager(await admin());
    expect((await jsm.streams.info(settings.stream)).state.messages).toBe(0);
    expect((await jsm.consumers.info(settings.stream, settings.consumer)).num_redelivered).toBe(0);
  });

  it("redelivers a nak'd job with deliveryCount 2", async () => {
    // An ack_wait longer than `until` waits: only the nak can bring the job back in time.
    const queue = await readyQueue({ ackWaitMs: 30_000 });
    const counts: number[] = [];
    const consumer = queue.consume(async (delivery) => {
      counts.push(delivery.deliveryCount);
      if (delivery.deliveryCount === 1) delivery.nak(0);
      else delivery.ack();
    });
    await queue.publishJob("run", encoder.encode("x"), "job_nak");
    await until(async () => counts.length === 2 && (await queue.pending()).ackPending === 0);
    await consumer.stop();
    expect(counts).toEqual([1, 2]);
  });

  it("naks with backoff, never loses, a job whose handler throws", async () => {
    const queue = await readyQueue({ ackWaitMs: 30_000 });
    const counts: number[] = [];
    const consumer = queue.consume(async (delivery) => {
      counts.push(delivery.deliveryCount);
      if (delivery.deliveryCount === 1) throw new Error("transient");
      delivery.ack();
    });
    await queue.publishJob("run", encoder.encode("x"), "job_throw");
    await until(() => counts.length === 2);
    await consumer.stop();
    expect(counts).toEqual([1, 2]);
  });

  it("drops a second publish of the same msgId and delivers the job once", async () => {
    const settings = freshSettings();
    const queue = await openQueue(settings);
    await queue.ensure();
    expect(await queue.publishJob("run", encoder.encode("a"), "job_dup")).toEqual({ duplicate: false });
    expect(await queue.publishJob("run", encoder.encode("a"), "job_dup")).toEqual({ duplicate: true });
    expect(await queue.pending()).toEqual({ pending: 1, ackPending: 0 });

    const seen: string[] = [];
    const consumer = queue.consume(async (delivery) => {
      seen.push(text(delivery));
      delivery.ack();
    });
    await until(async () => seen.length >= 1 && (await queue.pending()).ackPending === 0);
    await consumer.stop();
    expect(seen).toEqual(["a"]);
  });

  it("stops redelivery of a terminated job", async () => {
    const settings = freshSettings();
    const queue = await openQueue(settings);
    await queue.ensure();
    const counts: number[] = [];
    const consumer = queue.consume(async (delivery) => {
      counts.push(delivery.deliveryCount);
      delivery.term("bad payload");
    });
    await queue.publishJob("run", encoder.encode("x"), "job_term");
    await until(async () => counts.length === 1 && (await queue.pending()).ackPending === 0);
    await consumer.stop();
    expect(counts).toEqual([1]);
    expect(await queue.pending()).toEqual({ pending: 0, ackPending: 0 });
    const jsm = await jetstreamManager(await admin());
    expect((await jsm.consumers.info(settings.stream, settings.consumer)).num_redelivered).toBe(0);
  });

  it("runs at most `concurrency` handlers at once", async () => {
    const queue = await readyQueue({ concurrency: 2 });
    // Published first, so an unbounded pull would get all five at once.
    for (let i = 0; i < 5; i++) await queue.publishJob("run", encoder.encode(`${i}`), `job_c${i}`);
    let running = 0;
    let most = 0;
    let done = 0;
    const consumer = queue.consume(async (delivery) => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 50));
      running--;
      done++;
      delivery.ack();
    });
    await until(() => done === 5);
    await consumer.stop();
    expect(done).toBe(5);
    expect(most).toBe(2);
  });

  it("stop() waits for a running handler, which still acks", async () => {
    const queue = await readyQueue();
    const events: string[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const consumer = queue.consume(async (delivery) => {
      events.push("started");
      await gate;
      delivery.ack();
      events.push("acked");
    });
    await queue.publishJob("run", encoder.encode("x"), "job_stop");
    await until(() => events.includes("started"));

    const stopped = consumer.stop().then(() => events.push("stopped"));
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(events).toEqual(["started"]);
    release();
    await stopped;
    expect(events).toEqual(["started", "acked", "stopped"]);
    // The ack is not confirmed: it reaches the server just after.
    await until(async () => (await queue.pending()).ackPending === 0);
    expect(await queue.pending()).toEqual({ pending: 0, ackPending: 0 });
  });

  it("stop() returns at once when idle and pulls nothing afterwards", async () => {
    const queue = await readyQueue();
    const consumer = queue.consume(async (delivery) => delivery.ack());
    await consumer.stop();
    await queue.publishJob("run", encoder.encode("later"), "job_later");
    expect(await queue.pending()).toEqual({ pending: 1, ackPending: 0 });
  });
});

describe("JobQueue results and health", () => {
  it("publishes a result once to core subscribers even when published twice with one msgId", async () => {
    const settings = freshSettings();
    const queue = await openQueue(settings);
    await queue.ensure();
    const received: { data: string; id: string }[] = [];
    const core = await admin();
    const subscription = core.subscribe(`${settings.subjectPrefix}.status.completed`, {
      callback: (_error, message) => {
        received.push({ data: message.string(), id: message.headers?.get("Nats-Msg-Id") ?? "" });
      },
    });
    await core.flush();

    await queue.publishResult("completed", encoder.encode("r"), "res_1", { "x-job": "job_1" });
    await queue.publishResult("completed", encoder.encode("r"), "res_1");
    // Results arrive in stream order: once this marker is in, any duplicate would have been too.
    await queue.publishResult("completed", encoder.encode("marker"), "res_marker");
    await until(() => received.some((message) => message.id === "res_marker"));
    subscription.unsubscribe();

    expect(received).toEqual([
      { data: "r", id: "res_1" },
      { data: "marker", id: "res_marker" },
    ]);
  });

  it("answers a ping while connected and refuses it after close", async () => {
    const queue = await openQueue(freshSettings());
    await expect(queue.ping()).resolves.toBeUndefined();
    await queue.close();
    await expect(queue.ping()).rejects.toThrow();
  });
});

describe("redeliveryDelayMs", () => {
  it("grows with each delivery and is capped", () => {
    const delays = [1, 2, 3, 4, 5, 6, 20].map(redeliveryDelayMs);
    for (let i = 1; i < 5; i++) expect(delays[i]).toBeGreaterThan(delays[i - 1] as number);
    expect(delays[0]).toBe(1_000);
    expect(delays.at(-1)).toBe(300_000);
    expect(redeliveryDelayMs(0)).toBe(1_000);
  });
});

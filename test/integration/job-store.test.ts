import { randomBytes } from "node:crypto";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../../src/db/database.js";
import { isForeignKeyViolation } from "../../src/db/errors.js";
import type { NewJob } from "../../src/executor/job-record.js";
import { JobResults } from "../../src/executor/job-results.js";
import { JobStore } from "../../src/executor/job-store.js";
import { JobStreams } from "../../src/executor/job-stream.js";
import { WORKER_LOST } from "../../src/executor/lost-jobs.js";
import { MemoryStreamBus } from "../../src/executor/stream-bus.js";
import { SHOUT } from "../helpers/jobs.js";
import { openTestDatabase } from "../helpers/schema.js";

const LEASE_MS = 60_000;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The job store's batched statements: jobs arriving or finishing together share one
 * statement, and each still gets exactly what it would have got alone.
 */
describe("job store", () => {
  let database: Database;
  let store: JobStore;

  beforeAll(async () => {
    database = await openTestDatabase();
    store = new JobStore(database.db);
  });
  afterAll(async () => {
    await database?.close();
  });

  const newJob = (overrides: Partial<NewJob> = {}): NewJob => ({
    id: `job_${randomBytes(6).toString("hex")}`,
    organizationId: "org_a",
    traceId: randomBytes(16).toString("hex"),
    name: "shout",
    definition: SHOUT,
    input: { text: "hi" },
    source: "jetstream",
    createdBy: null,
    ...overrides,
  });

  it("records and starts jobs arriving together, each with its own row", async () => {
    const arriving = Array.from({ length: 20 }, () => newJob());
    const claims = await Promise.all(arriving.map((job) => store.createAndStart(job, LEASE_MS, true)));
    for (const [index, claim] of claims.entries()) {
      const job = arriving[index] as NewJob;
      expect(claim).toMatchObject({
        kind: "started",
        row: {
          id: job.id,
          status: "running",
          attempts: 1,
          input: job.input,
          definition: SHOUT,
          source: "jetstream",
        },
      });
      if (claim.kind !== "started") continue;
      expect(claim.row.createdAt).toBeInstanceOf(Date);
      expect(claim.row.leaseUntil?.getTime()).toBeGreaterThan(Date.now() + LEASE_MS / 2);
    }
  });

  it("starts a job id delivered twice at once only once", async () => {
    const job = newJob();
    // The first two calls take both write slots; the two copies then share a batch.
    const [, , first, second] = await Promise.all([
      store.createAndStart(newJob(), LEASE_MS, true),
      store.createAndStart(newJob(), LEASE_MS, true),
      store.createAndStart(job, LEASE_MS, true),
      store.createAndStart(job, LEASE_MS, true),
    ]);
    expect([first?.kind, second?.kind].sort()).toEqual(["leased", "started"]);
  });

  it("claims a queued job and one whose lease ran out, not one held or final", async () => {
    const { row: queued } = await store.create(newJob({ source: "http" }));
    expect(await store.createAndStart({ ...newJob(), id: queued.id }, LEASE_MS, true)).toMatchObject({
      kind: "started",
      row: { id: queued.id, source: "http", attempts: 1 },
    });
    expect(await store.createAndStart(newJob({ id: queued.id }), LEASE_MS, true)).toMatchObject({
      kind: "leased",
    });
    await database.pool.query("UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = $1", [
      queued.id,
    ]);
    expect(await store.createAndStart(newJob({ id: queued.id }), LEASE_MS, true)).toMatchObject({
      kind: "started",
      row: { attempts: 2 },
    });
    await store.finish(queued.id, { status: "completed", result: 1 });
    expect(await store.createAndStart(newJob({ id: queued.id }), LEASE_MS, true)).toMatchObject({
      kind: "final",
      row: { status: "completed", result: 1 },
    });
  });

  it("counts a job lost only when the delivery that claimed it was the broker's last", async () => {
    const waiting = newJob();
    const last = newJob();
    await store.createAndStart(waiting, LEASE_MS, false);
    await store.createAndStart(last, LEASE_MS, true);
    // Both leases ran out a minute ago: the first job's next delivery may still come.
    await database.pool.query(
      "UPDATE jobs SET lease_until = now() - interval '1 minute' WHERE id = ANY($1)",
      [[waiting.id, last.id]],
    );
    const lost = async () => (await store.lost(30_000, DAY_MS, 1000)).map((row) => row.id);
    expect(await lost()).toContain(last.id);
    expect(await lost()).not.toContain(waiting.id);
    // Unclaimed for longer than any redelivery could take: given up by the broker too.
    await database.pool.query("UPDATE jobs SET lease_until = now() - interval '2 days' WHERE id = $1", [
      waiting.id,
    ]);
    expect(await lost()).toContain(waiting.id);
  });

  it("fails a job no run is ending, and ends its stream: watchers see the error and the end", async () => {
    const streams = new JobStreams(database.db, new MemoryStreamBus(), 100, pino({ level: "silent" }));
    const announced: string[] = [];
    const results = new JobResults(
      store,
      streams,
      async (job, outcome) => {
        announced.push(`${job.job_id}:${outcome.kind}`);
      },
      () => {},
    );
    const job = newJob();
    await store.createAndStart(job, LEASE_MS, true);
    const watched: string[] = [];
    const stop = await streams.subscribe(job.id, (event) => watched.push(event.event_type));
    try {
      expect(await results.failOutsideRun({ job_id: job.id, trace_id: job.traceId }, WORKER_LOST)).toBe(true);
    } finally {
      await stop();
    }
    expect(watched).toEqual(["error", "end"]);
    expect((await streams.history(job.id)).map((event) => [event.seq, event.event_type])).toEqual([
      [1, "error"],
      [2, "end"],
    ]);
    expect(await store.find(job.id)).toMatchObject({ status: "failed", error: WORKER_LOST });
    expect(announced).toEqual([`${job.id}:failed`]);
    // Already final: neither stored nor streamed again.
    expect(await results.failOutsideRun({ job_id: job.id, trace_id: job.traceId }, WORKER_LOST)).toBe(false);
    expect(await streams.history(job.id)).toHaveLength(2);
  });

  it("refuses a job of an unknown organization without failing the jobs beside it", async () => {
    const [good, unknown, other] = await Promise.allSettled([
      store.createAndStart(newJob(), LEASE_MS, true),
      store.createAndStart(newJob({ organizationId: "org_missing" }), LEASE_MS, true),
      store.createAndStart(newJob(), LEASE_MS, true),
    ]);
    expect(good).toMatchObject({ status: "fulfilled", value: { kind: "started" } });
    expect(other).toMatchObject({ status: "fulfilled", value: { kind: "started" } });
    expect(unknown.status).toBe("rejected");
    expect(isForeignKeyViolation((unknown as PromiseRejectedResult).reason)).toBe(true);
  });

  it("stores a job's first outcome and answers the final row; a second outcome changes nothing", async () => {
    const jobs = await Promise.all(
      [newJob(), newJob()].map((job) => store.createAndStart(job, LEASE_MS, true)),
    );
    const [a, b] = jobs.map((claim) => (claim.kind === "started" ? claim.row.id : ""));
    const [, first, second, nothing] = await Promise.all([
      store.finish(a as string, { status: "completed", result: { text: "HI" } }),
      store.finish(b as string, { status: "failed", error: { message: "no", type: "Error" } }),
      store.finish(b as string, { status: "completed", result: "late" }),
      store.finish(a as string, { status: "completed", result: null }),
    ]);
    expect(first).toMatchObject({
      id: b,
      status: "failed",
      result: null,
      error: { message: "no", type: "Error" },
    });
    expect(first?.finishedAt).toBeInstanceOf(Date);
    expect(first?.leaseUntil).toBeNull();
    expect(second).toBeUndefined();
    expect(nothing).toBeUndefined();
    expect(await store.find(a as string)).toMatchObject({ status: "completed", result: { text: "HI" } });
  });

  it("stores a completed job without a result as null", async () => {
    const claim = await store.createAndStart(newJob({ input: undefined }), LEASE_MS, true);
    if (claim.kind !== "started") throw new Error("not started");
    expect(claim.row.input).toBeNull();
    expect(await store.finish(claim.row.id, { status: "completed", result: undefined })).toMatchObject({
      status: "completed",
      result: null,
    });
  });

  it("notes the results published together", async () => {
    const ids = (await Promise.all([newJob(), newJob(), newJob()].map((job) => store.create(job)))).map(
      ({ row }) => row.id,
    );
    await Promise.all(ids.map((id) => store.markPublished(id)));
    for (const id of ids) expect((await store.find(id))?.resultPublishedAt).toBeInstanceOf(Date);
  });
});

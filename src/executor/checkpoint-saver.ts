import type { RunnableConfig } from "@langchain/core/runnables";
import {
  type ChannelVersions,
  type Checkpoint,
  type CheckpointMetadata,
  type PendingWrite,
  WRITES_IDX_MAP,
} from "@langchain/langgraph-checkpoint";
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import type pg from "pg";
import { TickBatcher } from "../db/tick-batcher.js";
import { JOB_WRITES } from "./job-store.js";

type BlobRow = Awaited<ReturnType<PostgresSaver["_dumpBlobs"]>>[number];
type WriteRow = Awaited<ReturnType<PostgresSaver["_dumpWrites"]>>[number];
type CheckpointRow = [
  threadId: string,
  checkpointNs: string,
  checkpointId: string,
  parentId: string | undefined,
  checkpoint: string,
  metadata: string,
];

/** What one put or putWrites stores. */
type CheckpointWrite =
  | { kind: "checkpoint"; blobs: BlobRow[]; checkpoint: CheckpointRow }
  | { kind: "writes"; rows: WriteRow[]; overwrite: boolean };

/**
 * LangGraph's Postgres checkpointer, same tables and same rows, with its writes batched:
 * the checkpoints and task writes of every job running at once go to the database in one
 * statement (the stock saver spends a transaction and a round trip per row). Each put
 * still resolves only once its rows are committed, so a checkpoint LangGraph was told is
 * saved survives a crash. Reads are the stock saver's.
 */
export class BatchedPostgresSaver extends PostgresSaver {
  private readonly batcher: TickBatcher<CheckpointWrite, void>;
  /** Threads known to have no checkpoint yet: LangGraph's first look for their latest needs no query. */
  private readonly newThreads = new Set<string>();

  constructor(pool: pg.Pool, schema: string) {
    super(pool, undefined, { schema });
    const statement = batchStatement(schema);
    this.batcher = new TickBatcher(
      (items) => pool.query(statement, batchValues(items)).then(() => []),
      JOB_WRITES,
    );
  }

  /** Says the thread has no checkpoint (a job's first attempt) until its first put or the returned call. */
  expectNew(threadId: string): () => void {
    this.newThreads.add(threadId);
    return () => this.newThreads.delete(threadId);
  }

  override async getTuple(config: RunnableConfig) {
    const { thread_id, checkpoint_id } = config.configurable ?? {};
    if (checkpoint_id === undefined && this.newThreads.has(thread_id)) return undefined;
    return super.getTuple(config);
  }

  override async put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
  ): Promise<RunnableConfig> {
    if (config.configurable === undefined) throw new Error(`Missing "configurable" field in "config" param`);
    const { thread_id, checkpoint_ns = "", checkpoint_id } = config.configurable;
    this.newThreads.delete(thread_id);
    const [blobs, dumpedMetadata] = await Promise.all([
      this._dumpBlobs(thread_id, checkpoint_ns, checkpoint.channel_values, newVersions),
      this._dumpMetadata(metadata),
    ]);
    await this.batcher.submit({
      kind: "checkpoint",
      blobs,
      checkpoint: [
        thread_id,
        checkpoint_ns,
        checkpoint.id,
        checkpoint_id,
        JSON.stringify(this._dumpCheckpoint(checkpoint)),
        JSON.stringify(dumpedMetadata),
      ],
    });
    return { configurable: { thread_id, checkpoint_ns, checkpoint_id: checkpoint.id } };
  }

  override async putWrites(config: RunnableConfig, writes: PendingWrite[], taskId: string): Promise<void> {
    const { thread_id, checkpoint_ns, checkpoint_id } = config.configurable ?? {};
    const rows = await this._dumpWrites(thread_id, checkpoint_ns, checkpoint_id, taskId, writes);
    // As the stock saver: writes to LangGraph's special channels replace, others are kept as first written.
    await this.batcher.submit({
      kind: "writes",
      rows,
      overwrite: writes.every(([channel]) => channel in WRITES_IDX_MAP),
    });
  }
}

/**
 * One statement for a whole batch, each table's rows passed as arrays and unnested: the
 * stock saver's upserts (blobs kept, checkpoints replaced, writes kept or replaced), with
 * rows of one key merged beforehand so no statement meets its own key twice.
 */
function batchStatement(schema: string): string {
  const table = (name: string) => `"${schema}".${name}`;
  const writeColumns = "thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob";
  const writeKey = "thread_id, checkpoint_ns, checkpoint_id, task_id, idx";
  return `WITH blobs AS (
  INSERT INTO ${table("checkpoint_blobs")} (thread_id, checkpoint_ns, channel, version, type, blob)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[])
  ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
), checkpoints AS (
  INSERT INTO ${table("checkpoints")} (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
  SELECT t, ns, id, parent, checkpoint::jsonb, metadata::jsonb
  FROM unnest($7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[]) AS c(t, ns, id, parent, checkpoint, metadata)
  ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)
  DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata
), kept_writes AS (
  INSERT INTO ${table("checkpoint_writes")} (${writeColumns})
  SELECT * FROM unnest($13::text[], $14::text[], $15::text[], $16::text[], $17::int[], $18::text[], $19::text[], $20::bytea[])
  ON CONFLICT (${writeKey}) DO NOTHING
)
INSERT INTO ${table("checkpoint_writes")} (${writeColumns})
SELECT * FROM unnest($21::text[], $22::text[], $23::text[], $24::text[], $25::int[], $26::text[], $27::text[], $28::bytea[])
ON CONFLICT (${writeKey}) DO UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob`;
}

/** The batch's rows as the statement's column arrays, merged by key as sequential upserts would leave them. */
function batchValues(items: CheckpointWrite[]): unknown[] {
  const blobs = new Map<string, BlobRow>();
  const checkpoints = new Map<string, CheckpointRow>();
  const writes = new Map<string, { row: WriteRow; overwrite: boolean }>();
  for (const item of items) {
    if (item.kind === "checkpoint") {
      for (const blob of item.blobs) {
        const key = keyOf(blob.slice(0, 4));
        if (!blobs.has(key)) blobs.set(key, blob);
      }
      checkpoints.set(keyOf(item.checkpoint.slice(0, 3)), item.checkpoint);
      continue;
    }
    for (const row of item.rows) {
      const key = keyOf(row.slice(0, 5));
      const earlier = writes.get(key);
      // A kept write yields to any replacing one; of two kept writes the first stays.
      if (item.overwrite || !earlier) writes.set(key, { row, overwrite: item.overwrite });
    }
  }
  const writeRows = [...writes.values()];
  return [
    ...columns([...blobs.values()], 6),
    ...columns([...checkpoints.values()], 6),
    ...columns(
      writeRows.filter((write) => !write.overwrite).map((write) => write.row),
      8,
    ),
    ...columns(
      writeRows.filter((write) => write.overwrite).map((write) => write.row),
      8,
    ),
  ];
}

function keyOf(parts: readonly unknown[]): string {
  return JSON.stringify(parts);
}

/** Rows to column arrays (undefined as null). */
function columns(rows: readonly (readonly unknown[])[], width: number): unknown[][] {
  return Array.from({ length: width }, (_, column) => rows.map((row) => row[column] ?? null));
}

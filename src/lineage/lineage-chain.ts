import { and, asc, eq, gt, isNotNull, type SQL, sql } from "drizzle-orm";
import type { Db, DbOrTx } from "../db/database.js";
import { type InvocationRow, invocations, lineageChainHeads } from "../db/schema.js";
import { GENESIS_HASH, hashRecord, verifyRecord } from "./lineage-hash.js";

/**
 * Gives final invocations the next places in their organizations' chains, in the order
 * given, and their hashes, inside the caller's transaction. The chain head rows stay
 * locked until that transaction commits, so records of one organization take
 * consecutive places even across replicas; place records last in a transaction to hold
 * the locks briefly. The caller writes the returned rows together with
 * `chainHeadsUpdate` of them.
 */
export async function placeInChains(tx: DbOrTx, rows: readonly InvocationRow[]): Promise<InvocationRow[]> {
  // Heads are locked in organization order, as every batch does, so batches cannot deadlock.
  const organizations = [...new Set(rows.map((row) => row.organizationId))].sort();
  const heads = await tx.execute<{ organization_id: string; last_seq: number; last_hash: string }>(sql`
    INSERT INTO lineage_chain_heads (organization_id, last_seq, last_hash)
    VALUES ${sql.join(
      organizations.map((organizationId) => sql`(${organizationId}, 0, ${GENESIS_HASH})`),
      sql`, `,
    )}
    ON CONFLICT (organization_id) DO UPDATE SET last_seq = lineage_chain_heads.last_seq
    RETURNING organization_id, last_seq, last_hash`);
  const tips = new Map(
    heads.rows.map((head) => [head.organization_id, { seq: head.last_seq, hash: head.last_hash }]),
  );
  return rows.map((row) => {
    const tip = tips.get(row.organizationId) as { seq: number; hash: string };
    const placed = { ...row, chainSeq: tip.seq + 1, prevHash: tip.hash };
    const hashed = { ...placed, ...hashRecord(placed, tip.hash) };
    tip.seq = hashed.chainSeq;
    tip.hash = hashed.recordHash;
    return hashed;
  });
}

/** Moves each organization's chain head to the last of the records placed by `placeInChains`. */
export function chainHeadsUpdate(placed: readonly InvocationRow[]): SQL {
  const last = new Map(placed.map((row) => [row.organizationId, row]));
  const values = [...last.values()].map(
    (row) => sql`(${row.organizationId}, ${row.chainSeq}::bigint, ${row.recordHash})`,
  );
  return sql`UPDATE lineage_chain_heads AS head SET last_seq = tip.seq, last_hash = tip.hash
              FROM (VALUES ${sql.join(values, sql`, `)}) AS tip (organization_id, seq, hash)
             WHERE head.organization_id = tip.organization_id`;
}

export interface ChainVerification {
  valid: boolean;
  checked: number;
  first_broken: { invocation_id: string | null; chain_seq: number; reason: string } | null;
}

const BATCH = 500;

/**
 * Walks an organization's chain from the start and names the first record that does not
 * hold. Reads one snapshot, so records appended while it runs are neither counted nor
 * mistaken for a truncated chain.
 */
export function verifyChain(db: Db, organizationId: string): Promise<ChainVerification> {
  return db.transaction((tx) => walkChain(tx, organizationId), {
    isolationLevel: "repeatable read",
    accessMode: "read only",
  });
}

async function walkChain(db: DbOrTx, organizationId: string): Promise<ChainVerification> {
  let prevHash = GENESIS_HASH;
  let expectedSeq = 1;
  let checked = 0;
  for (;;) {
    const rows = await db
      .select()
      .from(invocations)
      .where(
        and(
          eq(invocations.organizationId, organizationId),
          isNotNull(invocations.chainSeq),
          gt(invocations.chainSeq, expectedSeq - 1),
        ),
      )
      .orderBy(asc(invocations.chainSeq))
      .limit(BATCH);
    for (const row of rows) {
      const seq = row.chainSeq ?? 0;
      if (seq !== expectedSeq) {
        // Deleted records leave no id to name: name their place, and where the chain resumes.
        const gap =
          seq - 1 > expectedSeq ? `records ${expectedSeq} to ${seq - 1} are` : `record ${expectedSeq} is`;
        return {
          valid: false,
          checked,
          first_broken: {
            invocation_id: null,
            chain_seq: expectedSeq,
            reason: `${gap} missing (the chain resumes at ${row.id}, seq ${seq})`,
          },
        };
      }
      const reason = verifyRecord(row, prevHash);
      if (reason)
        return { valid: false, checked, first_broken: { invocation_id: row.id, chain_seq: seq, reason } };
      prevHash = row.recordHash ?? "";
      expectedSeq++;
      checked++;
    }
    if (rows.length < BATCH) break;
  }
  const [head] = await db
    .select()
    .from(lineageChainHeads)
    .where(eq(lineageChainHeads.organizationId, organizationId));
  if (head && (head.lastSeq !== checked || head.lastHash !== prevHash)) {
    return {
      valid: false,
      checked,
      first_broken: {
        invocation_id: null,
        chain_seq: checked + 1,
        reason: "records at the end of the chain are missing",
      },
    };
  }
  return { valid: true, checked, first_broken: null };
}

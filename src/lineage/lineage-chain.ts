import { and, asc, eq, gt, isNotNull, type SQL, sql } from "drizzle-orm";
import type { Db, DbOrTx } from "../db/database.js";
import { type InvocationRow, invocations, lineageChainHeads } from "../db/schema.js";
import { GENESIS_HASH, hashRecord, verifyRecord } from "./lineage-hash.js";

/**
 * Gives a final invocation the next place in its organization's chain and its hashes,
 * inside the caller's transaction. The chain head row stays locked until that
 * transaction commits, so records of one organization take consecutive places even
 * across replicas; place records last in a transaction to hold the lock briefly. The
 * caller writes the returned row together with `chainHeadUpdate` of it.
 */
export async function placeInChain(tx: DbOrTx, row: InvocationRow): Promise<InvocationRow> {
  const head = await tx.execute<{ last_seq: number; last_hash: string }>(sql`
    INSERT INTO lineage_chain_heads (organization_id, last_seq, last_hash)
    VALUES (${row.organizationId}, 0, ${GENESIS_HASH})
    ON CONFLICT (organization_id) DO UPDATE SET last_seq = lineage_chain_heads.last_seq
    RETURNING last_seq, last_hash`);
  const { last_seq: lastSeq, last_hash: prevHash } = head.rows[0] as { last_seq: number; last_hash: string };
  const placed = { ...row, chainSeq: lastSeq + 1, prevHash };
  return { ...placed, ...hashRecord(placed, prevHash) };
}

/** Moves the organization's chain head to a record placed by `placeInChain`. */
export function chainHeadUpdate(placed: InvocationRow): SQL {
  return sql`UPDATE lineage_chain_heads SET last_seq = ${placed.chainSeq}, last_hash = ${placed.recordHash}
              WHERE organization_id = ${placed.organizationId}`;
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

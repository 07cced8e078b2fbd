import type { Db } from "../db/database.js";
import type { ExternalAgentRow, InvocationRow } from "../db/schema.js";
import { TickBatcher } from "../db/tick-batcher.js";
import type { InvocationOutbox } from "../delivery/invocation-outbox.js";
import type {
  BudgetService,
  ReserveRequest,
  ReserveResult,
  Settlement,
} from "../governance/budget/budget.service.js";
import { chainHeadsUpdate, placeInChains } from "../lineage/lineage-chain.js";
import { REDACTED_VALUES } from "../lineage/lineage-hash.js";
import type { InvocationStore } from "./invocation-store.js";

/** A call whose budget is to be reserved, recorded as running if it is allowed. */
export interface OpenRequest {
  row: InvocationRow;
  budget: ReserveRequest;
}

export type OpenOutcome =
  /** Recorded; `budget` says whether the reservation was allowed. */
  | { kind: "opened"; row: InvocationRow; budget: ReserveResult }
  /** Another call holds this idempotency key: that call's row, and nothing was reserved. */
  | { kind: "duplicate"; row: InvocationRow };

/** Within a batch: the key's holder gave it up between the insert and the lookup. */
type BatchOpenOutcome = OpenOutcome | { kind: "retry" };

/** A call made final: its row as it ends, and what becomes of its reservation. */
export interface CloseRequest {
  /** Written over the running record, or recorded whole when the call never had one. */
  row: InvocationRow;
  settlement?: Settlement;
  agent: ExternalAgentRow;
}

/**
 * The two writes of a governed call — the reservation with its running record, and the
 * final record with its settlement, deliveries and place in the lineage chain — each
 * made in batches of the calls that reach it at the same time, one transaction per
 * batch. A call's promise settles once its batch has committed, so an answer never
 * refers to a record, a reservation, a settlement or a delivery that is not there.
 */
export class InvocationJournal {
  private readonly opener = new TickBatcher((requests: OpenRequest[]) => this.openBatch(requests));
  private readonly closer = new TickBatcher((requests: CloseRequest[]) => this.closeBatch(requests));

  constructor(
    private readonly db: Db,
    private readonly store: InvocationStore,
    private readonly budgets: BudgetService,
    private readonly outbox: InvocationOutbox,
  ) {}

  async open(request: OpenRequest): Promise<OpenOutcome> {
    const outcome = await this.opener.submit(request);
    // Nothing was kept for it: the key is free again, so the call is opened anew.
    return outcome.kind === "retry" ? this.open(request) : outcome;
  }

  close(request: CloseRequest): Promise<InvocationRow> {
    return this.closer.submit(request);
  }

  private openBatch(requests: OpenRequest[]): Promise<BatchOpenOutcome[]> {
    return this.db.transaction(async (tx) => {
      const budgets = await this.budgets.reserveAll(
        tx,
        requests.map((request) => request.budget),
      );
      const rows = requests.map((request, index) => {
        const budget = budgets[index] as ReserveResult;
        return budget.allowed ? request.row : { ...request.row, reservedCost: 0 };
      });
      const inserted = await this.store.insertRunning(tx, rows);
      // A call left out for its idempotency key gives back what was reserved for it.
      const giveBack = budgets.flatMap((budget, index) =>
        budget.allowed && !inserted.has((rows[index] as InvocationRow).id)
          ? [{ kind: "release" as const, reservation: budget.reservation }]
          : [],
      );
      await this.budgets.settleAll(tx, giveBack);
      // Read in the same transaction, so a failure here undoes the batch rather than
      // leaving reservations behind for calls that were never told they were opened.
      const holders = await this.store.findIdempotencyHolders(
        tx,
        rows.filter((row) => !inserted.has(row.id)),
      );
      return rows.map((row, index): BatchOpenOutcome => {
        if (inserted.has(row.id)) return { kind: "opened", row, budget: budgets[index] as ReserveResult };
        const holder = holders.get(`${row.organizationId}/${row.idempotencyKey}`);
        return holder ? { kind: "duplicate", row: holder } : { kind: "retry" };
      });
    });
  }

  /**
   * Closes each call once: a call whose own end and the abandoned-call sweep meet in one
   * batch is closed by the first of them, and a call some other closer made final
   * already (the sweep, when the call outlived its threshold) keeps that record. Either
   * way the others answer with the record that stands.
   */
  private async closeBatch(requests: CloseRequest[]): Promise<InvocationRow[]> {
    const firsts = new Map<string, CloseRequest>();
    for (const request of requests) if (!firsts.has(request.row.id)) firsts.set(request.row.id, request);
    const closed = new Map((await this.closeEach([...firsts.values()])).map((row) => [row.id, row]));
    return Promise.all(
      requests.map(({ row }) => closed.get(row.id) ?? this.store.get(row.organizationId, row.id)),
    );
  }

  /** The calls written, less those another closer had made final. */
  private async closeEach(requests: CloseRequest[]): Promise<InvocationRow[]> {
    try {
      return await this.closeOpenCalls(requests);
    } catch (error) {
      if (!(error instanceof ClosedElsewhere)) throw error;
      const rest = requests.filter((request) => !error.ids.has(request.row.id));
      return rest.length > 0 ? this.closeEach(rest) : [];
    }
  }

  private async closeOpenCalls(requests: CloseRequest[]): Promise<InvocationRow[]> {
    let queuedDeliveries = false;
    const closed = await this.db.transaction(async (tx) => {
      // What the outbox adds (delivery state) lies outside the hashed content. It runs
      // first: placing takes the organizations' chain locks, held until commit.
      const finals: InvocationRow[] = [];
      for (const { row, agent } of requests) {
        const { columns, queued } = await this.outbox.queue(tx, row, agent);
        finals.push({ ...row, ...columns });
        queuedDeliveries ||= queued;
      }
      const placed = await placeInChains(tx, finals);
      const { written, erased } = await this.store.writeFinal(tx, placed, chainHeadsUpdate(placed));
      const closedElsewhere = placed.filter((row) => !written.has(row.id));
      // The batch's chain places were counted with these calls in: it is rolled back whole.
      if (closedElsewhere.length > 0) throw new ClosedElsewhere(closedElsewhere.map((row) => row.id));
      // Settled last: the budget rows are what concurrent calls of the agent wait on, so
      // they are locked for as little of the transaction as can be. Threshold warnings
      // are deliveries too.
      const warned = await this.budgets.settleAll(
        tx,
        requests.flatMap((request) => (request.settlement ? [request.settlement] : [])),
      );
      queuedDeliveries ||= warned;
      // The answer of an erased call is not kept, so it is not handed on either.
      return placed.map((row) => (erased.has(row.id) ? { ...row, ...REDACTED_VALUES } : row));
    });
    if (queuedDeliveries) this.outbox.wake();
    return closed;
  }
}

/** Calls of a batch that were already final when it was written. */
class ClosedElsewhere extends Error {
  override name = "ClosedElsewhere";
  readonly ids: Set<string>;

  constructor(ids: readonly string[]) {
    super(`${ids.length} call(s) were made final by another closer`);
    this.ids = new Set(ids);
  }
}

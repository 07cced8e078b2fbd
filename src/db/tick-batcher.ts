import { isRowRefusal, isTransactionConflict } from "./errors.js";

/** Runs of a batch that collided with another transaction, before its items are failed. */
const CONFLICT_ATTEMPTS = 3;

export interface TickBatcherOptions {
  /** Items one write takes at most: bounds a statement's size and a failed batch's reach. */
  maxBatch?: number;
  /**
   * Writes in flight at once. With two, items arriving while a write is under way go out
   * in the next free slot rather than after that write; more would only split batches.
   */
  writers?: number;
  /**
   * Whether the items of a batch that failed with `error` are written again one by one,
   * so one bad item cannot fail its neighbours. By default, when the database refused a
   * row; any other failure (the database is down) fails the batch at once.
   */
  isolates?: (error: unknown) => boolean;
}

interface Pending<Item, Outcome> {
  item: Item;
  resolve(outcome: Outcome): void;
  reject(error: unknown): void;
}

/**
 * Group commit: what callers submit in the same turn of the event loop, or while the
 * writes in flight are under way, is gathered and written as one batch, in one
 * transaction — so under load the cost of a commit (round trips, a WAL flush, row locks
 * held until it ends) is shared by every item in it, and a lone item still goes out on
 * the next turn. An item's promise settles once the write holding it has.
 *
 * `write` answers one outcome per item, in order. A batch rolled back for colliding with
 * another transaction is run again.
 */
export class TickBatcher<Item, Outcome> {
  private queue: Array<Pending<Item, Outcome>> = [];
  private writing = 0;
  private scheduled = false;
  private readonly maxBatch: number;
  private readonly writers: number;
  private readonly isolates: (error: unknown) => boolean;

  constructor(
    private readonly write: (items: Item[]) => Promise<readonly Outcome[]>,
    options: TickBatcherOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 200;
    this.writers = options.writers ?? 1;
    this.isolates = options.isolates ?? isRowRefusal;
  }

  submit(item: Item): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.writing < this.writers && !this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          void this.drain();
        });
      }
    });
  }

  private async drain(): Promise<void> {
    this.writing += 1;
    try {
      while (this.queue.length > 0) {
        await this.writeBatch(this.queue.splice(0, this.maxBatch));
      }
    } finally {
      this.writing -= 1;
    }
  }

  private async writeBatch(batch: Array<Pending<Item, Outcome>>, attempt = 1): Promise<void> {
    try {
      const outcomes = await this.write(batch.map((entry) => entry.item));
      for (const [index, entry] of batch.entries()) entry.resolve(outcomes[index] as Outcome);
    } catch (error) {
      if (isTransactionConflict(error) && attempt < CONFLICT_ATTEMPTS) {
        await this.writeBatch(batch, attempt + 1);
        return;
      }
      if (batch.length === 1 || !this.isolates(error)) {
        for (const entry of batch) entry.reject(error);
        return;
      }
      for (const entry of batch) await this.writeBatch([entry]);
    }
  }
}

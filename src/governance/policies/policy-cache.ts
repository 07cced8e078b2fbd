/**
 * A short-lived, per-organization cache of what policy evaluation reads, so a call does
 * not query the database for policies that rarely change.
 *
 * Writes made through this process invalidate their organization at once. Other replicas
 * learn of a change only when their entry expires: a policy change takes effect
 * everywhere within the TTL (2 s by default), not instantly.
 */

interface Entry<T> {
  expiresAt: number;
  value: Promise<T>;
}

/** Bounds memory when many organizations invoke; the oldest entry goes first. */
const MAX_ENTRIES = 10_000;

export class PolicyCache<T> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The cached value for `organizationId`, or `load()`'s. Concurrent misses share one load.
   * The promise is cached rather than its result, so an invalidation that lands while a
   * load is in flight removes that load too and a stale result is never kept.
   */
  get(organizationId: string, load: () => Promise<T>): Promise<T> {
    const now = this.now();
    const cached = this.entries.get(organizationId);
    if (cached && cached.expiresAt > now) return cached.value;

    // A real promise, settled once: a lazy thenable (a Drizzle query) would run again on
    // every await, and a synchronous throw becomes a rejection.
    const value = new Promise<T>((resolve) => resolve(load()));
    const entry: Entry<T> = { expiresAt: now + this.ttlMs, value };
    this.entries.delete(organizationId);
    if (this.entries.size >= MAX_ENTRIES) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(organizationId, entry);
    // A failed load is not remembered: the next call tries again.
    entry.value.catch(() => {
      if (this.entries.get(organizationId) === entry) this.entries.delete(organizationId);
    });
    return entry.value;
  }

  /** Forgets an organization's entry; call after a write has committed. */
  invalidate(organizationId: string): void {
    this.entries.delete(organizationId);
  }
}

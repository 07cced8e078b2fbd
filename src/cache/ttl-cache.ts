/**
 * A short-lived read-through cache for what the invoke path reads on every call but
 * rarely changes (API keys, agents, organization settings, policies, approval rules,
 * webhook subscriptions).
 *
 * Writes made through this process invalidate their key at once. Other replicas learn of
 * a change only when their entry expires: a change takes effect everywhere within the
 * TTL (2 s where it is used), not instantly.
 */

interface Entry<T> {
  expiresAt: number;
  value: Promise<T>;
}

/** Bounds memory when many organizations invoke; the oldest entry goes first. */
const MAX_ENTRIES = 10_000;

export class TtlCache<T> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The cached value for `key`, or `load()`'s. Concurrent misses share one load.
   * The promise is cached rather than its result, so an invalidation that lands while a
   * load is in flight removes that load too and a stale result is never kept.
   */
  get(key: string, load: () => Promise<T>): Promise<T> {
    const now = this.now();
    const cached = this.entries.get(key);
    if (cached && cached.expiresAt > now) return cached.value;

    // A real promise, settled once: a lazy thenable (a Drizzle query) would run again on
    // every await, and a synchronous throw becomes a rejection.
    const value = new Promise<T>((resolve) => resolve(load()));
    const entry: Entry<T> = { expiresAt: now + this.ttlMs, value };
    this.entries.delete(key);
    if (this.entries.size >= MAX_ENTRIES) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, entry);
    // A failed load is not remembered: the next call tries again.
    entry.value.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    return entry.value;
  }

  /** Forgets an organization's entry; call after a write has committed. */
  invalidate(key: string): void {
    this.entries.delete(key);
  }

  /** Forgets every entry, for a write whose key is not known (a revoked API key's hash). */
  clear(): void {
    this.entries.clear();
  }
}

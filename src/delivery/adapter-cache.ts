import type { PlatformAdapter } from "./adapters/adapter.js";

/** An agent's platform adapter, or undefined when its settings name nowhere to deliver to. */
export type AdapterLoader = (organizationId: string, agentId: string) => Promise<PlatformAdapter | undefined>;

/**
 * Platform adapters of agents, built once per version of each agent instead of once per
 * delivery: building one reads the agent and unseals its secrets. The caller names the
 * version it read along with the delivery's invocation (any change to an agent moves its
 * version and its updated_at), so a changed agent is never delivered for with its old
 * settings. Holds at most `capacity` agents, dropping the least recently used.
 */
export class AdapterCache {
  private readonly entries = new Map<
    string,
    { stamp: string; adapter: Promise<PlatformAdapter | undefined> }
  >();

  constructor(
    private readonly load: AdapterLoader,
    private readonly capacity = 1_000,
  ) {}

  adapterFor(organizationId: string, agentId: string, stamp: string): Promise<PlatformAdapter | undefined> {
    const key = `${organizationId}/${agentId}`;
    const cached = this.entries.get(key);
    this.entries.delete(key);
    if (cached?.stamp === stamp) {
      this.entries.set(key, cached);
      return cached.adapter;
    }
    const adapter = this.load(organizationId, agentId);
    const entry = { stamp, adapter };
    this.entries.set(key, entry);
    // A failure (a sealed secret that cannot be read, say) is not kept: the next delivery tries again.
    adapter.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    return adapter;
  }
}

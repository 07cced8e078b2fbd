/**
 * Live changes of managed agents, for WebSocket watchers and HTTP long-polls. Events
 * are published after the change they report has committed; a watcher that misses one
 * (not connected) reads the state from the API instead — nothing here is durable.
 */

export type LifecycleEvent = { agent_id: string; organization_id: string; at: string } & (
  | { type: "status"; from: string | null; to: string; reason: string | null }
  | { type: "heartbeat"; status: string | null; uptime: number | null }
  | { type: "health"; health: string; missed_heartbeats: number }
  | { type: "alert"; alert: Record<string, unknown> }
  | { type: "config"; version: number }
  | {
      type: "process";
      event: "started" | "crashed" | "gave_up" | "stopped";
      pid?: number;
      code?: number | null;
      signal?: string | null;
    }
);

/** The same event before the bus stamps it. */
export type LifecycleEventInput = LifecycleEvent extends infer E
  ? E extends LifecycleEvent
    ? Omit<E, "at">
    : never
  : never;

type Listener = (event: LifecycleEvent) => void;

export class LifecycleEvents {
  private readonly listeners = new Map<string, Set<Listener>>();

  publish(input: LifecycleEventInput): void {
    const event = { ...input, at: new Date().toISOString() } as LifecycleEvent;
    // Listeners must not throw: each owns its own failures (a closed socket, say).
    for (const listener of this.listeners.get(event.organization_id) ?? []) listener(event);
  }

  /** Calls `listener` for every event of the organization; returns the unsubscribe function. */
  subscribe(organizationId: string, listener: Listener): () => void {
    let set = this.listeners.get(organizationId);
    if (!set) {
      set = new Set();
      this.listeners.set(organizationId, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      // Only the set this listener joined: a second call must not drop a newer one.
      if (set.size === 0 && this.listeners.get(organizationId) === set) this.listeners.delete(organizationId);
    };
  }
}

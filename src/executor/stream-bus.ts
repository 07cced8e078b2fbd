import { Redis } from "ioredis";

/** Where live job events travel: Redis pub/sub (shared by every process) or memory (one process). */
export interface StreamBus {
  publish(channel: string, message: string): Promise<void>;
  /** Calls `listener` for every message on `channel` until the returned function is called. */
  subscribe(channel: string, listener: (message: string) => void): Promise<() => Promise<void>>;
  /** Subscribers connected now, over all channels (for the metrics). */
  subscriberCount(): number;
  close(): Promise<void>;
}

export class MemoryStreamBus implements StreamBus {
  private readonly listeners = new Map<string, Set<(message: string) => void>>();

  async publish(channel: string, message: string): Promise<void> {
    for (const listener of this.listeners.get(channel) ?? []) listener(message);
  }

  async subscribe(channel: string, listener: (message: string) => void) {
    const set = this.listeners.get(channel) ?? new Set();
    this.listeners.set(channel, set);
    set.add(listener);
    return async () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(channel) === set) this.listeners.delete(channel);
    };
  }

  /** Does anyone listen on `channel`? */
  hasSubscribers(channel: string): boolean {
    return this.listeners.has(channel);
  }

  subscriberCount(): number {
    let count = 0;
    for (const set of this.listeners.values()) count += set.size;
    return count;
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}

/**
 * Redis pub/sub with plain PUBLISH/SUBSCRIBE only (Dragonfly speaks them too). A
 * subscribed connection can do nothing else, so publishing and subscribing each have
 * their own; one subscriber connection serves every channel of this process.
 */
export class RedisStreamBus implements StreamBus {
  private readonly publisher: Redis;
  private readonly subscriber: Redis;
  private readonly local = new MemoryStreamBus();
  /** The SUBSCRIBE of each channel this process listens on, while it is pending and after. */
  private readonly subscriptions = new Map<string, Promise<unknown>>();

  constructor(url: string, onError: (error: Error) => void) {
    // Auto-pipelining sends the events many jobs publish in one tick in one write.
    this.publisher = new Redis(url, { maxRetriesPerRequest: 1, enableAutoPipelining: true });
    this.subscriber = new Redis(url);
    this.publisher.on("error", onError);
    this.subscriber.on("error", onError);
    this.subscriber.on("message", (channel: string, message: string) => {
      void this.local.publish(channel, message);
    });
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.publisher.publish(channel, message);
  }

  async subscribe(channel: string, listener: (message: string) => void) {
    const unsubscribeLocal = await this.local.subscribe(channel, listener);
    // Every listener of a channel waits for its one SUBSCRIBE, pending or done: a second
    // reader must not take a subscription Redis has not confirmed for a live one.
    let subscribed = this.subscriptions.get(channel);
    if (!subscribed) {
      subscribed = this.subscriber.subscribe(channel);
      this.subscriptions.set(channel, subscribed);
    }
    try {
      await subscribed;
    } catch (error) {
      // Not subscribed: the listener would wait on a channel nobody feeds.
      if (this.subscriptions.get(channel) === subscribed) this.subscriptions.delete(channel);
      await unsubscribeLocal();
      throw error;
    }
    return async () => {
      await unsubscribeLocal();
      if (this.local.hasSubscribers(channel)) return;
      this.subscriptions.delete(channel);
      await this.subscriber.unsubscribe(channel);
    };
  }

  subscriberCount(): number {
    return this.local.subscriberCount();
  }

  async ping(): Promise<void> {
    await this.publisher.ping();
  }

  async close(): Promise<void> {
    this.publisher.disconnect();
    this.subscriber.disconnect();
    await this.local.close();
  }
}

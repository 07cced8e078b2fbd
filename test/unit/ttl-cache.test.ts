import { describe, expect, it } from "vitest";
import { TtlCache } from "../../src/cache/ttl-cache.js";

function deferred<T>() {
  let resolve: (value: T) => void = () => {};
  const promise = new Promise<T>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

describe("TtlCache", () => {
  it("keeps a value for the TTL, then loads again", async () => {
    let now = 0;
    let loads = 0;
    const cache = new TtlCache<number>(2000, () => now);
    const load = async () => ++loads;
    expect(await cache.get("org", load)).toBe(1);
    now = 1999;
    expect(await cache.get("org", load)).toBe(1);
    now = 2000;
    expect(await cache.get("org", load)).toBe(2);
  });

  it("shares one load between concurrent misses, per organization", async () => {
    let loads = 0;
    const cache = new TtlCache<string>(2000, () => 0);
    const load = async () => `load ${++loads}`;
    const [a, b, other] = await Promise.all([
      cache.get("a", load),
      cache.get("a", load),
      cache.get("b", load),
    ]);
    expect(a).toBe(b);
    expect(other).not.toBe(a);
    expect(loads).toBe(2);
  });

  it("never keeps a load that was in flight when the organization was invalidated", async () => {
    const cache = new TtlCache<string>(2000, () => 0);
    const stale = deferred<string>();
    const inFlight = cache.get("org", () => stale.promise);
    cache.invalidate("org");
    stale.resolve("before the write");
    expect(await inFlight).toBe("before the write");
    expect(await cache.get("org", async () => "after the write")).toBe("after the write");
  });

  it("forgets a failed load, synchronous throws included", async () => {
    const cache = new TtlCache<string>(2000, () => 0);
    await expect(cache.get("org", async () => Promise.reject(new Error("db down")))).rejects.toThrow(
      "db down",
    );
    await expect(
      cache.get("org", () => {
        throw new Error("sync");
      }),
    ).rejects.toThrow("sync");
    expect(await cache.get("org", async () => "recovered")).toBe("recovered");
  });

  it("settles a lazy thenable once", async () => {
    let runs = 0;
    // biome-ignore lint/suspicious/noThenProperty: a lazy thenable (like a Drizzle query) is what is under test
    const lazy = { then: (resolve: (value: number) => void) => resolve(++runs) };
    const cache = new TtlCache<number>(2000, () => 0);
    await cache.get("org", () => lazy as unknown as Promise<number>);
    await cache.get("org", () => lazy as unknown as Promise<number>);
    expect(runs).toBe(1);
  });
});

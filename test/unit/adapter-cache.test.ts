import { describe, expect, it } from "vitest";
import { AdapterCache } from "../../src/delivery/adapter-cache.js";
import type { PlatformAdapter } from "../../src/delivery/adapters/adapter.js";

/** A loader that counts its calls and builds a distinct adapter each time. */
function countingLoader() {
  const calls: string[] = [];
  const load = async (organizationId: string, agentId: string): Promise<PlatformAdapter | undefined> => {
    calls.push(`${organizationId}/${agentId}`);
    if (agentId === "agt_broken") throw new Error("cannot unseal");
    if (agentId === "agt_nowhere") return undefined;
    return {
      format: () => ({ url: `https://${agentId}.example`, headers: {}, body: "" }),
      deliver: async () => ({ delivered: true, retryable: false }),
    };
  };
  return { calls, load };
}

describe("AdapterCache", () => {
  it("builds an agent's adapter once per version, and again when the version moves", async () => {
    const { calls, load } = countingLoader();
    const cache = new AdapterCache(load);
    const first = await cache.adapterFor("org_a", "agt_1", "1/t1");
    expect(await cache.adapterFor("org_a", "agt_1", "1/t1")).toBe(first);
    const changed = await cache.adapterFor("org_a", "agt_1", "2/t2");
    expect(changed).not.toBe(first);
    expect(calls).toEqual(["org_a/agt_1", "org_a/agt_1"]);
  });

  it("builds once for deliveries asking at the same time", async () => {
    const { calls, load } = countingLoader();
    const cache = new AdapterCache(load);
    const adapters = await Promise.all([1, 2, 3].map(() => cache.adapterFor("org_a", "agt_1", "1/t1")));
    expect(new Set(adapters).size).toBe(1);
    expect(calls).toHaveLength(1);
  });

  it("keeps agents of other organizations apart, and remembers an agent with nowhere to deliver", async () => {
    const { calls, load } = countingLoader();
    const cache = new AdapterCache(load);
    await cache.adapterFor("org_a", "agt_1", "1/t1");
    await cache.adapterFor("org_b", "agt_1", "1/t1");
    expect(await cache.adapterFor("org_a", "agt_nowhere", "1/t1")).toBeUndefined();
    expect(await cache.adapterFor("org_a", "agt_nowhere", "1/t1")).toBeUndefined();
    expect(calls).toEqual(["org_a/agt_1", "org_b/agt_1", "org_a/agt_nowhere"]);
  });

  it("does not keep a failure: the next delivery tries again", async () => {
    const { calls, load } = countingLoader();
    const cache = new AdapterCache(load);
    await expect(cache.adapterFor("org_a", "agt_broken", "1/t1")).rejects.toThrow("cannot unseal");
    await expect(cache.adapterFor("org_a", "agt_broken", "1/t1")).rejects.toThrow("cannot unseal");
    expect(calls).toEqual(["org_a/agt_broken", "org_a/agt_broken"]);
  });

  it("drops the least recently used agent beyond its capacity", async () => {
    const { calls, load } = countingLoader();
    const cache = new AdapterCache(load, 2);
    await cache.adapterFor("org_a", "agt_1", "1");
    await cache.adapterFor("org_a", "agt_2", "1");
    await cache.adapterFor("org_a", "agt_1", "1");
    await cache.adapterFor("org_a", "agt_3", "1");
    await cache.adapterFor("org_a", "agt_1", "1");
    await cache.adapterFor("org_a", "agt_2", "1");
    expect(calls).toEqual(["org_a/agt_1", "org_a/agt_2", "org_a/agt_3", "org_a/agt_2"]);
  });
});

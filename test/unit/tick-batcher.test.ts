import { describe, expect, it } from "vitest";
import { TickBatcher } from "../../src/db/tick-batcher.js";

/** A write that records each batch it was given and answers each item doubled. */
function recordingWrite(fail: (item: number) => boolean = () => false) {
  const batches: number[][] = [];
  const write = async (items: number[]) => {
    batches.push(items);
    await new Promise((resolve) => setTimeout(resolve, 5));
    if (items.some(fail)) throw new Error(`bad batch ${items.join(",")}`);
    return items.map((item) => item * 2);
  };
  return { batches, write };
}

const later = () => new Promise((resolve) => setTimeout(resolve, 1));

describe("TickBatcher", () => {
  it("writes what is submitted in one turn together, and answers each item its own outcome", async () => {
    const { batches, write } = recordingWrite();
    const batcher = new TickBatcher(write);
    const results = await Promise.all([1, 2, 3].map((item) => batcher.submit(item)));
    expect(results).toEqual([2, 4, 6]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it("gathers what arrives while a write is under way into the next batch", async () => {
    const { batches, write } = recordingWrite();
    const batcher = new TickBatcher(write);
    const first = batcher.submit(1);
    await later();
    const rest = [2, 3, 4].map((item) => batcher.submit(item));
    await Promise.all([first, ...rest]);
    expect(batches).toEqual([[1], [2, 3, 4]]);
  });

  it("with two writers, sends what arrives during a write in the free slot", async () => {
    const { batches, write } = recordingWrite();
    const batcher = new TickBatcher(write, { writers: 2 });
    const first = batcher.submit(1);
    await later();
    const second = batcher.submit(2);
    await later();
    expect(batches).toEqual([[1], [2]]);
    await Promise.all([first, second]);
  });

  it("settles an item only once the write holding it has finished", async () => {
    let written = false;
    const batcher = new TickBatcher<number, void>(async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      written = true;
      return [];
    });
    await batcher.submit(1);
    expect(written).toBe(true);
  });

  it("retries a failed batch item by item when told to, so only the bad item fails", async () => {
    const { batches, write } = recordingWrite((item) => item === 2);
    const batcher = new TickBatcher(write, { isolates: () => true });
    const settled = await Promise.allSettled([1, 2, 3].map((item) => batcher.submit(item)));
    expect(settled.map((result) => result.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(settled[2]).toEqual({ status: "fulfilled", value: 6 });
    expect(batches).toEqual([[1, 2, 3], [1], [2], [3]]);
  });

  it("fails the whole batch at once for an error that is not a refused row", async () => {
    const { batches, write } = recordingWrite((item) => item === 2);
    const batcher = new TickBatcher(write);
    const settled = await Promise.allSettled([1, 2, 3].map((item) => batcher.submit(item)));
    expect(settled.map((result) => result.status)).toEqual(["rejected", "rejected", "rejected"]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it("goes on writing after a failure", async () => {
    const { write } = recordingWrite((item) => item === 1);
    const batcher = new TickBatcher(write);
    await expect(batcher.submit(1)).rejects.toThrow("bad batch 1");
    expect(await batcher.submit(2)).toBe(4);
  });
});

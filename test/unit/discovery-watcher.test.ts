import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { watchAgentsDirectory } from "../../src/lifecycle/discovery-watcher.js";
import { until } from "../helpers/eventually.js";

const PACKAGE = [
  "AGENT_NAME=example",
  "AGENT_VERSION=1.0.0",
  "AGENT_DESCRIPTION=An example agent",
  "DEFAULT_SUBSCRIBED_TOPICS=logs.raw",
  "DEFAULT_FINDINGS_TOPIC=findings.example",
].join("\n");

const FAST = { debounceMs: 20, pollMs: 20 };

let workspace: string;
const open: Array<{ close(): void }> = [];

/** Starts a watcher that counts its calls and is closed after the test. */
function counting(directory: string, options: Parameters<typeof watchAgentsDirectory>[2] = FAST) {
  const state = { calls: 0, errors: [] as unknown[] };
  const watcher = watchAgentsDirectory(directory, () => state.calls++, {
    ...options,
    onError: (error) => state.errors.push(error),
  });
  open.push(watcher);
  return { state, watcher };
}

async function addPackage(directory: string, folder: string): Promise<void> {
  await mkdir(path.join(directory, folder), { recursive: true });
  await writeFile(path.join(directory, folder, ".env.discovery"), PACKAGE);
}

beforeEach(async () => {
  workspace = await mkdtemp(path.join(tmpdir(), "steward-watch-"));
});

afterEach(async () => {
  for (const watcher of open.splice(0)) watcher.close();
  await rm(workspace, { recursive: true, force: true });
});

describe("watchAgentsDirectory", () => {
  it("calls onChange when a package folder appears", async () => {
    const { state } = counting(workspace);
    await addPackage(workspace, "alpha");
    await until(() => state.calls > 0);
    expect(state.calls).toBeGreaterThan(0);
    expect(state.errors).toEqual([]);
  });

  it("calls onChange when a package's .env.discovery is edited", async () => {
    await addPackage(workspace, "alpha");
    const { state } = counting(workspace);
    await writeFile(path.join(workspace, "alpha", ".env.discovery"), `${PACKAGE}\nAGENT_TAGS=x`);
    await until(() => state.calls > 0);
    expect(state.calls).toBeGreaterThan(0);
  });

  it("watches a package folder created after the watch started", async () => {
    const { state } = counting(workspace);
    await mkdir(path.join(workspace, "late"));
    await until(() => state.calls > 0);
    const before = state.calls;
    await writeFile(path.join(workspace, "late", ".env.discovery"), PACKAGE);
    await until(() => state.calls > before);
    expect(state.calls).toBeGreaterThan(before);
  });

  it("waits for a directory that does not exist yet, without creating it", async () => {
    const directory = path.join(workspace, "agents");
    const { state } = counting(directory);
    expect(existsSync(directory)).toBe(false);
    await mkdir(directory);
    await until(() => state.calls > 0);
    expect(state.calls).toBe(1);
    await addPackage(directory, "alpha");
    await until(() => state.calls > 1);
    expect(state.calls).toBeGreaterThan(1);
    expect(state.errors).toEqual([]);
  });

  it("survives the directory being deleted and created again", async () => {
    const directory = path.join(workspace, "agents");
    await addPackage(directory, "alpha");
    const { state } = counting(directory);
    await rm(directory, { recursive: true });
    await until(() => state.calls > 0);
    expect(state.calls).toBeGreaterThan(0);

    const afterDelete = state.calls;
    await addPackage(directory, "beta");
    await until(() => state.calls > afterDelete);
    const afterCreate = state.calls;
    await writeFile(path.join(directory, "beta", ".env.discovery"), `${PACKAGE}\nAGENT_TAGS=x`);
    await until(() => state.calls > afterCreate);
    expect(state.calls).toBeGreaterThan(afterCreate);
    expect(state.errors).toEqual([]);
  });

  it("notices the deletion from the watch itself, without waiting for the poll, and lets go of it", async () => {
    const directory = path.join(workspace, "agents");
    await addPackage(directory, "alpha");
    const watches = () => process.getActiveResourcesInfo().filter((name) => name === "FSEventWrap").length;
    const before = watches();
    const { state } = counting(directory, { debounceMs: 20, pollMs: 60_000 });
    expect(watches()).toBe(before + 2);
    await rm(directory, { recursive: true });
    await until(() => state.calls > 0 && watches() === before);
    expect(state.calls).toBeGreaterThan(0);
    // The watches of the deleted directory are released at once, not at the next poll.
    expect(watches()).toBe(before);
  });

  it("leaves no watcher or timer running after close()", async () => {
    const count = (kind: string) => process.getActiveResourcesInfo().filter((name) => name === kind).length;
    const watchesBefore = count("FSEventWrap");
    // Long periods keep the poll and a debounce pending when close() runs.
    const { watcher } = counting(workspace, { debounceMs: 60_000, pollMs: 60_000 });
    await addPackage(workspace, "alpha");
    await until(() => count("FSEventWrap") === watchesBefore + 2); // the directory and the package folder
    const timersBefore = count("Timeout");
    watcher.close();
    expect(timersBefore - count("Timeout")).toBe(2);
    // fs.watch handles finish closing on a later turn of the event loop.
    await until(() => count("FSEventWrap") === watchesBefore);
    expect(count("FSEventWrap")).toBe(watchesBefore);
  });

  it("coalesces a burst of changes into one call", async () => {
    const { state } = counting(workspace, { debounceMs: 150, pollMs: 1000 });
    // The control's longer quiet period ends after the first watcher's would have fired for every write.
    const control = counting(workspace, { debounceMs: 500, pollMs: 1000 });
    for (let index = 0; index < 10; index++) await addPackage(workspace, `p${index}`);
    await until(() => control.state.calls > 0);
    expect(state.calls).toBe(1);
  });

  it("makes no more calls after close()", async () => {
    const { state, watcher } = counting(workspace);
    const control = counting(workspace, { debounceMs: 200, pollMs: 20 });
    watcher.close();
    await addPackage(workspace, "alpha");
    await until(() => control.state.calls > 0);
    expect(control.state.calls).toBeGreaterThan(0);
    expect(state.calls).toBe(0);
  });

  it("reports an onChange that throws to onError and keeps watching", async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const watcher = watchAgentsDirectory(
      workspace,
      () => {
        calls++;
        throw new Error("rescan failed");
      },
      { ...FAST, onError: (error) => errors.push(error) },
    );
    open.push(watcher);
    await addPackage(workspace, "alpha");
    await until(() => calls > 0);
    await addPackage(workspace, "beta");
    await until(() => calls > 1);
    expect(calls).toBeGreaterThan(1);
    expect(errors).toHaveLength(calls);
    expect(errors[0]).toEqual(new Error("rescan failed"));
  });
});

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  ProcessAlreadyRunningError,
  type ProcessExit,
  ProcessManager,
  type ProcessManagerOptions,
  ProcessNotRunningError,
  type ProcessSpec,
} from "../../src/lifecycle/process-manager.js";
import { until } from "../helpers/eventually.js";

type Recorded =
  | { type: "started"; agentId: string; pid: number; restarts: number }
  | { type: "output"; agentId: string; stream: "stdout" | "stderr"; line: string }
  | ({
      type: "crashed";
      agentId: string;
      restarts: number;
      restartInMs?: number;
      error?: Error;
    } & ProcessExit)
  | ({ type: "gaveUp"; agentId: string; restarts: number } & ProcessExit)
  | ({ type: "stopped"; agentId: string } & ProcessExit);
type Of<T extends Recorded["type"]> = Extract<Recorded, { type: T }>;

const managers: ProcessManager[] = [];
const scratch = mkdtempSync(join(tmpdir(), "steward-pm-"));

afterEach(async () => {
  await Promise.all(managers.splice(0).map((manager) => manager.stopAll()));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A manager whose events are recorded, with quick restarts unless the test says otherwise. */
function harness(options: Partial<Omit<ProcessManagerOptions, "events">> = {}) {
  const events: Recorded[] = [];
  const manager = new ProcessManager({
    events: {
      started: (agentId, info) => events.push({ type: "started", agentId, ...info }),
      output: (agentId, stream, line) => events.push({ type: "output", agentId, stream, line }),
      crashed: (agentId, info) => events.push({ type: "crashed", agentId, ...info }),
      gaveUp: (agentId, info) => events.push({ type: "gaveUp", agentId, ...info }),
      stopped: (agentId, info) => events.push({ type: "stopped", agentId, ...info }),
    },
    restartDelayMs: 10,
    maxDelayMs: 1000,
    maxRestarts: 3,
    stableAfterMs: 60_000,
    stopGraceMs: 5000,
    ...options,
  });
  managers.push(manager);
  const all = <T extends Recorded["type"]>(type: T, agentId?: string) =>
    events.filter((event): event is Of<T> => event.type === type && (!agentId || event.agentId === agentId));
  const lines = (agentId: string, stream: "stdout" | "stderr") =>
    all("output", agentId)
      .filter((event) => event.stream === stream)
      .map((event) => event.line);
  /** Waits for the nth event of a type (1-based) and returns it. */
  async function waitFor<T extends Recorded["type"]>(type: T, agentId: string, nth = 1): Promise<Of<T>> {
    await until(() => all(type, agentId).length >= nth);
    const event = all(type, agentId)[nth - 1];
    if (!event) throw new Error(`no ${type} event #${nth} for ${agentId}; saw ${JSON.stringify(events)}`);
    return event;
  }
  return { manager, events, all, lines, waitFor };
}

/** A spec running `command` with just PATH (so `node` resolves). */
function shell(command: string, env: Record<string, string> = {}): () => Promise<ProcessSpec> {
  return async () => ({ command, cwd: scratch, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env } });
}

/** `node -e` with the script in single quotes, so it must use double quotes only. */
function node(script: string, env?: Record<string, string>): () => Promise<ProcessSpec> {
  if (script.includes("'")) throw new Error("use double quotes in the script");
  return shell(`node -e '${script}'`, env);
}

const FOREVER = "setInterval(() => {}, 1000);";

/** kill(pid, 0) also succeeds on a zombie, and this machine's init may be slow to reap the orphans. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, "utf8") : "";
  return !/\) Z /.test(stat);
}

describe("ProcessManager: running and output", () => {
  it("passes stdout and stderr on line by line, cuts long lines and flushes the last partial line", async () => {
    const { manager, waitFor, lines } = harness({ maxRestarts: 0 });
    await manager.start(
      "out",
      node(
        'process.stdout.write("one\\r\\ntwo\\n" + "x".repeat(20000) + "\\nafter\\ntail"); process.stderr.write("oops\\n");',
      ),
    );
    // A clean exit nobody asked for is still a crash; with maxRestarts 0 it ends there.
    expect(await waitFor("crashed", "out")).toMatchObject({ code: 0, signal: null, restarts: 0 });
    await waitFor("gaveUp", "out");
    expect(lines("out", "stdout")).toEqual(["one", "two", "x".repeat(16 * 1024), "after", "tail"]);
    expect(lines("out", "stderr")).toEqual(["oops"]);
  });

  it("gives the child exactly the environment in the spec, nothing of Steward's", async () => {
    process.env.STEWARD_TEST_SENTINEL = "must-not-leak";
    try {
      const { manager, waitFor, lines } = harness({ maxRestarts: 0 });
      await manager.start("env", node("console.log(JSON.stringify(process.env));", { GIVEN_VAR: "given" }));
      await waitFor("gaveUp", "env");
      const env = JSON.parse(lines("env", "stdout")[0] ?? "{}") as Record<string, string>;
      expect(env.GIVEN_VAR).toBe("given");
      expect(env.PATH).toBe(process.env.PATH);
      expect(env).not.toHaveProperty("STEWARD_TEST_SENTINEL");
      // /bin/sh adds its own bookkeeping variables, nothing else.
      const shellOwn = ["PWD", "SHLVL", "_", "OLDPWD"];
      expect(Object.keys(env).filter((key) => !["GIVEN_VAR", "PATH", ...shellOwn].includes(key))).toEqual([]);
    } finally {
      delete process.env.STEWARD_TEST_SENTINEL;
    }
  });

  it("rejects start when the working directory is missing, and forgets the agent", async () => {
    const { manager } = harness();
    const spec = async () => ({ command: "true", cwd: join(scratch, "missing"), env: {} });
    await expect(manager.start("nocwd", spec)).rejects.toThrow(/cannot start agent nocwd in .*missing/);
    expect(manager.status("nocwd")).toBeUndefined();
  });

  it("refuses a second start of a running agent, also when both come at once", async () => {
    const { manager } = harness();
    const first = manager.start("twice", node(FOREVER));
    await expect(manager.start("twice", node(FOREVER))).rejects.toBeInstanceOf(ProcessAlreadyRunningError);
    await first;
    await expect(manager.start("twice", node(FOREVER))).rejects.toBeInstanceOf(ProcessAlreadyRunningError);
    await expect(manager.restart("never-started")).rejects.toBeInstanceOf(ProcessNotRunningError);
  });
});

describe("ProcessManager: crashes and restarts", () => {
  it("restarts a killed process with a fresh spec and a new pid", async () => {
    const { manager, waitFor } = harness();
    let specs = 0;
    const spec = node(FOREVER);
    const { pid } = await manager.start("killed", async () => {
      specs += 1;
      return spec();
    });
    expect(manager.status("killed")).toMatchObject({ pid, restarts: 0, state: "running" });
    process.kill(manager.status("killed")?.pid ?? 0, "SIGKILL");
    expect(await waitFor("crashed", "killed")).toMatchObject({
      signal: "SIGKILL",
      restartInMs: 10,
      restarts: 0,
    });
    const restarted = await waitFor("started", "killed", 2);
    expect(restarted.restarts).toBe(1);
    expect(restarted.pid).not.toBe(pid);
    expect(manager.status("killed")).toMatchObject({ pid: restarted.pid, restarts: 1, state: "running" });
    expect(specs).toBe(2);
  });

  it("backs off exponentially up to the cap, then gives up after maxRestarts", async () => {
    const { manager, waitFor, all } = harness({ restartDelayMs: 10, maxDelayMs: 50, maxRestarts: 4 });
    await manager.start("loop", shell("exit 1"));
    expect(await waitFor("gaveUp", "loop")).toMatchObject({ code: 1, restarts: 4 });
    const crashes = all("crashed", "loop");
    expect(crashes.map((crash) => crash.restartInMs)).toEqual([10, 20, 40, 50, undefined]);
    expect(crashes.every((crash) => crash.code === 1)).toBe(true);
    expect(all("started", "loop").map((event) => event.restarts)).toEqual([0, 1, 2, 3, 4]);
    expect(manager.status("loop")).toBeUndefined();
  });

  it("does not count a crash after a stable run towards giving up", async () => {
    const { manager, waitFor, all } = harness({ restartDelayMs: 10, maxRestarts: 1, stableAfterMs: 0 });
    await manager.start("stable", shell("exit 1"));
    await waitFor("crashed", "stable", 4);
    await manager.stop("stable");
    expect(
      all("crashed", "stable")
        .slice(0, 4)
        .map((crash) => crash.restartInMs),
    ).toEqual([10, 10, 10, 10]);
    expect(all("gaveUp", "stable")).toEqual([]);
  });

  it("treats a spec factory failing before a restart as a crash", async () => {
    const { manager, waitFor, all } = harness({ restartDelayMs: 10, maxRestarts: 2 });
    let calls = 0;
    await manager.start("badspec", async () => {
      calls += 1;
      if (calls > 1) throw new Error("config store down");
      return shell("exit 1")();
    });
    expect(await waitFor("gaveUp", "badspec")).toMatchObject({ code: null, signal: null, restarts: 2 });
    const crashes = all("crashed", "badspec");
    expect(crashes.map((crash) => [crash.code, crash.restartInMs, crash.error?.message])).toEqual([
      [1, 10, undefined],
      [null, 20, "config store down"],
      [null, undefined, "config store down"],
    ]);
    expect(all("started", "badspec")).toHaveLength(1);
  });

  it("cancels a pending restart on stop", async () => {
    const { manager, waitFor, all } = harness({ restartDelayMs: 60_000, maxDelayMs: 60_000 });
    await manager.start("pending", shell("exit 1"));
    await waitFor("crashed", "pending");
    expect(manager.status("pending")).toMatchObject({ pid: null, state: "restarting" });
    expect(await manager.stop("pending")).toBeUndefined();
    expect(manager.status("pending")).toBeUndefined();
    expect(all("started", "pending")).toHaveLength(1);
    expect(all("stopped", "pending")).toEqual([]);
  });
});

describe("ProcessManager: stopping", () => {
  it("sends SIGTERM first, and a well-behaved child exits with its own code", async () => {
    const { manager, waitFor, lines, all } = harness();
    await manager.start(
      "polite",
      node(
        `process.on("SIGTERM", () => { console.log("got SIGTERM"); process.exit(3); }); console.log("ready"); ${FOREVER}`,
      ),
    );
    await until(() => lines("polite", "stdout").includes("ready"));
    expect(await manager.stop("polite")).toEqual({ code: 3, signal: null });
    expect(lines("polite", "stdout")).toContain("got SIGTERM");
    expect(await waitFor("stopped", "polite")).toMatchObject({ code: 3, signal: null });
    expect(all("crashed", "polite")).toEqual([]);
    expect(manager.status("polite")).toBeUndefined();
  });

  it("kills a child that ignores SIGTERM after stopGraceMs", async () => {
    const { manager, lines } = harness({ stopGraceMs: 300 });
    await manager.start(
      "stubborn",
      node(`process.on("SIGTERM", () => console.log("ignored")); console.log("ready"); ${FOREVER}`),
    );
    await until(() => lines("stubborn", "stdout").includes("ready"));
    expect(await manager.stop("stubborn")).toEqual({ code: null, signal: "SIGKILL" });
    expect(lines("stubborn", "stdout")).toContain("ignored");
  });

  it("takes the agent's grandchildren down with it, even one that ignores SIGTERM", async () => {
    const { manager } = harness();
    const pidFile = join(scratch, "grandchild.pid");
    writeFileSync(
      join(scratch, "grandchild.cjs"),
      `process.on("SIGTERM", () => {}); require("fs").writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); ${FOREVER}`,
    );
    // The direct child spawns the grandchild and waits, as `tsx agent.ts` or `npm start` would. The
    // grandchild ignores SIGTERM and holds no pipe: nothing but the manager's cleanup can end it.
    writeFileSync(
      join(scratch, "parent.cjs"),
      `require("child_process").spawn(process.execPath, ["grandchild.cjs"], { stdio: "ignore" }); ${FOREVER}`,
    );
    await manager.start("family", shell("node parent.cjs"));
    await until(() => existsSync(pidFile));
    const grandchild = Number(readFileSync(pidFile, "utf8"));
    expect(isAlive(grandchild)).toBe(true);
    await manager.stop("family");
    await until(() => !isAlive(grandchild), 2000);
    expect(isAlive(grandchild)).toBe(false);
  });

  it("restarts on request with the same spec: stopped, then started with a new pid", async () => {
    const { manager, waitFor, lines } = harness();
    const { pid } = await manager.start("again", node(`console.log("ready"); ${FOREVER}`));
    await until(() => lines("again", "stdout").includes("ready"));
    const { pid: next } = await manager.restart("again");
    expect(next).not.toBe(pid);
    // Killed by the default SIGTERM action: the shell's exit code 143 is reported as the signal.
    expect(await waitFor("stopped", "again")).toMatchObject({ code: null, signal: "SIGTERM" });
    expect(await waitFor("started", "again", 2)).toMatchObject({ pid: next, restarts: 0 });
    expect(isAlive(pid)).toBe(false);
  });

  it("stopAll stops every process", async () => {
    const { manager, all } = harness();
    const ids = ["a", "b", "c"];
    const pids = await Promise.all(ids.map(async (id) => (await manager.start(id, node(FOREVER))).pid));
    await manager.stopAll();
    expect(
      all("stopped")
        .map((event) => event.agentId)
        .sort(),
    ).toEqual(ids);
    expect(ids.map((id) => manager.status(id))).toEqual([undefined, undefined, undefined]);
    await until(() => pids.every((pid) => !isAlive(pid)), 2000);
    expect(pids.filter(isAlive)).toEqual([]);
  });

  it("leaves no timer behind after stopAll, so a process using it can exit", async () => {
    const { manager, waitFor, lines } = harness({ maxRestarts: 0 });
    const script = join(scratch, "stop-all.mts");
    const source = fileURLToPath(new URL("../../src/lifecycle/process-manager.ts", import.meta.url));
    // A pending 60 s restart and a 60 s kill timer would both hold this process open if left running.
    writeFileSync(
      script,
      `import { ProcessManager } from ${JSON.stringify(source)};
      let crashed = false;
      const none = () => {};
      const pm = new ProcessManager({
        events: { started: none, output: none, gaveUp: none, stopped: none, crashed: () => { crashed = true; } },
        restartDelayMs: 60_000, maxDelayMs: 60_000, maxRestarts: 5, stableAfterMs: 60_000, stopGraceMs: 60_000,
      });
      const spec = (command: string) => async () => ({ command, cwd: ".", env: { PATH: process.env.PATH ?? "" } });
      await pm.start("crashing", spec("exit 1"));
      await pm.start("running", spec("sleep 30"));
      while (!crashed) await new Promise((resolve) => setTimeout(resolve, 20));
      await pm.stopAll();
      console.log("stopped all");`,
    );
    await manager.start("host", async () => ({
      command: `node --import tsx ${JSON.stringify(script)}`,
      cwd: fileURLToPath(new URL("../..", import.meta.url)),
      env: { PATH: process.env.PATH ?? "" },
    }));
    expect(await waitFor("crashed", "host")).toMatchObject({ code: 0, signal: null });
    expect(lines("host", "stdout")).toEqual(["stopped all"]);
  });
});

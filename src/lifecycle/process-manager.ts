/**
 * Runs the managed agents that live on this machine as child processes: passes their output
 * on by line, restarts crashes with backoff, stops them (and what they started) gracefully.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { constants } from "node:os";

/** How to run one agent: the factory returning it is called again before every restart. */
export interface ProcessSpec {
  /** A shell command (run with /bin/sh -c), in `cwd`. */
  command: string;
  cwd: string;
  /** The child's whole environment: the manager adds nothing and inherits nothing (Steward's own secrets must not leak into agents). */
  env: Record<string, string>;
}

/** How a process ended: an exit code, or the signal that killed it. */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** What the manager reports; handlers must not throw (they run inside child-process callbacks). */
export interface ProcessEvents {
  started(agentId: string, info: { pid: number; restarts: number }): void;
  output(agentId: string, stream: "stdout" | "stderr", line: string): void;
  /** An unexpected exit; `restartInMs` is set when a restart is scheduled; `error` when the restart itself failed. */
  crashed(
    agentId: string,
    info: ProcessExit & { restarts: number; restartInMs?: number; error?: Error },
  ): void;
  /** The crash loop hit maxRestarts: no restart any more. */
  gaveUp(agentId: string, info: ProcessExit & { restarts: number }): void;
  /** Stopped on request (stop/restart/stopAll). */
  stopped(agentId: string, info: ProcessExit): void;
}

/** Restart and stop policy, and where events go. */
export interface ProcessManagerOptions {
  events: ProcessEvents;
  /** First restart delay; doubled on each consecutive crash, capped at maxDelayMs. */
  restartDelayMs: number;
  maxDelayMs: number;
  /** Consecutive crashes restarted before giving up. */
  maxRestarts: number;
  /** A process that ran this long before crashing resets the consecutive-crash count. */
  stableAfterMs: number;
  /** SIGTERM, then SIGKILL after this long. */
  stopGraceMs: number;
}

/** A managed agent's process as the manager sees it now. */
export interface ProcessStatus {
  pid: number | null;
  startedAt: Date | null;
  restarts: number;
  state: "running" | "restarting";
}

/** start() of an agent whose process is running or waiting to restart. */
export class ProcessAlreadyRunningError extends Error {
  override name = "ProcessAlreadyRunningError";
}

/** restart() of an agent the manager does not run (never started, stopped or given up). */
export class ProcessNotRunningError extends Error {
  override name = "ProcessNotRunningError";
}

/** Longer output lines are cut: one runaway line must not grow Steward's memory. */
const MAX_LINE_CHARS = 16 * 1024;
/** After the process exited, how long to wait for its pipes to close before closing them ourselves. */
const PIPE_CLOSE_WAIT_MS = 1000;
/**
 * dash (/bin/sh on Debian) forks for `-c` rather than exec, so SIGTERM to the group would kill the
 * shell first and hide the agent's own exit; a `trap` would instead swallow a signal that arrives
 * before the agent is forked. So the command runs as the shell's background job, and only then does
 * the shell ignore TERM: every process gets the signal, and the shell exits with the agent's status
 * (128 + n when signal n killed it, which exitOf turns back into the signal). As for any background
 * job, SIGINT and SIGQUIT start ignored (Steward sends neither). 2>/dev/null hides "Terminated".
 */
const wrapCommand = (command: string) => `{ ${command}\n} &\ntrap '' TERM\nwait $! 2>/dev/null`;

interface Run {
  child: ChildProcess;
  exited: Promise<ProcessExit>;
  kill: () => void;
}

interface Managed {
  agentId: string;
  spec: () => Promise<ProcessSpec>;
  /** The current child; `exited` settles once its output is flushed, `kill` ends its whole group. */
  run?: Run;
  startedAt?: Date;
  /** Automatic restarts since start(). */
  restarts: number;
  /** Crashes in a row, for backoff and giving up; reset by a stable run. */
  consecutive: number;
  timer?: NodeJS.Timeout;
  /** Set by stop(): any later exit is "stopped", and nothing restarts. */
  stopping: boolean;
}

/** Starts, watches, restarts and stops local managed-agent processes. */
export class ProcessManager {
  private readonly agents = new Map<string, Managed>();

  constructor(private readonly options: ProcessManagerOptions) {}

  /** Starts the agent's process; resolves once spawned, rejects if the spec or the spawn fails. */
  async start(agentId: string, spec: () => Promise<ProcessSpec>): Promise<{ pid: number }> {
    if (this.agents.has(agentId)) throw new ProcessAlreadyRunningError(`agent ${agentId} is already running`);
    const managed: Managed = { agentId, spec, restarts: 0, consecutive: 0, stopping: false };
    // Registered before the first await, so a concurrent start() of the same agent fails.
    this.agents.set(agentId, managed);
    try {
      return { pid: await this.launch(managed) };
    } catch (error) {
      this.forget(managed);
      throw error;
    }
  }

  /** Stops gracefully and resolves with the exit; undefined when nothing was running (a pending restart is cancelled). */
  async stop(agentId: string): Promise<ProcessExit | undefined> {
    const managed = this.agents.get(agentId);
    if (!managed) return undefined;
    managed.stopping = true;
    if (managed.timer) clearTimeout(managed.timer);
    if (!managed.run) {
      // Waiting to restart, or its spec factory is still running (launch() sees `stopping`).
      this.forget(managed);
      return undefined;
    }
    const { child, exited, kill } = managed.run;
    signalGroup(child, "SIGTERM");
    const deadline = setTimeout(kill, this.options.stopGraceMs);
    try {
      return await exited;
    } finally {
      clearTimeout(deadline);
    }
  }

  /** Stops, then starts with the same spec factory (or a new one); a fresh start resets the restart counts. */
  async restart(agentId: string, spec?: () => Promise<ProcessSpec>): Promise<{ pid: number }> {
    const managed = this.agents.get(agentId);
    if (!managed) throw new ProcessNotRunningError(`agent ${agentId} is not running`);
    await this.stop(agentId);
    return this.start(agentId, spec ?? managed.spec);
  }

  /** The agent's process now; undefined when the manager does not run it. */
  status(agentId: string): ProcessStatus | undefined {
    const managed = this.agents.get(agentId);
    if (!managed) return undefined;
    return {
      pid: managed.run?.child.pid ?? null,
      startedAt: managed.startedAt ?? null,
      restarts: managed.restarts,
      // Only a crash leaves an agent without a child while the manager still holds it.
      state: !managed.run && managed.consecutive > 0 ? "restarting" : "running",
    };
  }

  /** Stops every process in parallel (server shutdown); no timer survives it. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.agents.keys()].map((agentId) => this.stop(agentId)));
  }

  /** Asks the spec factory and spawns; the caller decides whether a failure is a crash. */
  private async launch(managed: Managed): Promise<number> {
    const spec = await managed.spec();
    if (managed.stopping)
      throw new ProcessNotRunningError(`agent ${managed.agentId} was stopped before it started`);
    // detached: the child leads its own process group, so a signal reaches everything it started.
    const child = spawn("/bin/sh", ["-c", wrapCommand(spec.command)], {
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    // libuv spawns synchronously: no pid means it failed, and the reason comes as an "error" event.
    if (child.pid === undefined) {
      const cause = await new Promise<Error>((resolve) => child.once("error", resolve));
      throw new Error(`cannot start agent ${managed.agentId} in ${spec.cwd}: ${cause.message}`, { cause });
    }
    managed.startedAt = new Date();
    managed.run = this.watch(managed, child);
    this.options.events.started(managed.agentId, { pid: child.pid, restarts: managed.restarts });
    return child.pid;
  }

  /** Passes output on; `exited` settles when the child has exited and its pipes are closed. */
  private watch(managed: Managed, child: ChildProcess): Run {
    const { events } = this.options;
    const stdout = lineSplitter((line) => events.output(managed.agentId, "stdout", line));
    const stderr = lineSplitter((line) => events.output(managed.agentId, "stderr", line));
    child.stdout?.setEncoding("utf8").on("data", stdout.push);
    child.stderr?.setEncoding("utf8").on("data", stderr.push);
    // A failed kill() also emits "error"; without a listener that would crash Steward.
    child.on("error", () => {});
    let pipeTimer: NodeJS.Timeout | undefined;
    const kill = () => {
      signalGroup(child, "SIGKILL");
      // Something that left the group (setsid) may still hold the pipes: stop waiting for it.
      pipeTimer ??= setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
      }, PIPE_CLOSE_WAIT_MS);
    };
    // After a crash, what the agent left behind must not outlive it (it would also hold the pipes
    // open); during stop() its helpers may still be shutting down, and stop()'s deadline covers them.
    child.once("exit", () => {
      if (!managed.stopping) kill();
    });
    const exited = new Promise<ProcessExit>((resolve) => {
      child.once("close", (code: number | null, signal: NodeJS.Signals | null) => {
        clearTimeout(pipeTimer);
        // The agent is gone; whatever is left in its group (not holding the pipes) is an orphan.
        signalGroup(child, "SIGKILL");
        stdout.flush();
        stderr.flush();
        const exit = exitOf(code, signal);
        resolve(exit);
        this.onExit(managed, exit);
      });
    });
    return { child, exited, kill };
  }

  private onExit(managed: Managed, exit: ProcessExit): void {
    managed.run = undefined;
    if (managed.stopping) {
      this.forget(managed);
      this.options.events.stopped(managed.agentId, exit);
    } else {
      this.crashed(managed, exit);
    }
  }

  /** Schedules a restart with backoff, or gives up after maxRestarts crashes in a row. */
  private crashed(managed: Managed, exit: ProcessExit, error?: Error): void {
    const { events, restartDelayMs, maxDelayMs, maxRestarts, stableAfterMs } = this.options;
    const ranMs = managed.startedAt ? Date.now() - managed.startedAt.getTime() : 0;
    managed.startedAt = undefined;
    // A long, healthy run means this crash is not part of a loop: start backoff afresh.
    if (ranMs >= stableAfterMs) managed.consecutive = 0;
    managed.consecutive += 1;
    const { agentId, restarts } = managed;
    if (managed.consecutive > maxRestarts) {
      this.forget(managed);
      events.crashed(agentId, { ...exit, restarts, ...(error && { error }) });
      events.gaveUp(agentId, { ...exit, restarts });
      return;
    }
    const restartInMs = Math.min(restartDelayMs * 2 ** (managed.consecutive - 1), maxDelayMs);
    managed.timer = setTimeout(() => {
      managed.timer = undefined;
      managed.restarts += 1;
      this.launch(managed).catch((failure: unknown) => {
        // After stop() there is nothing to report; otherwise a failed restart is one more crash.
        const error = failure instanceof Error ? failure : new Error(String(failure));
        if (!managed.stopping) this.crashed(managed, { code: null, signal: null }, error);
      });
    }, restartInMs);
    events.crashed(agentId, { ...exit, restarts, restartInMs, ...(error && { error }) });
  }

  /** Drops the agent, unless a newer start() of the same id has replaced it meanwhile. */
  private forget(managed: Managed): void {
    if (this.agents.get(managed.agentId) === managed) this.agents.delete(managed.agentId);
  }
}

/** Signals the child's whole process group; falls back to the child alone if the group is gone. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

const signalNames = new Map<number, NodeJS.Signals>();
for (const [name, number] of Object.entries(constants.signals).reverse())
  signalNames.set(number, name as NodeJS.Signals);

/** The shell reports an agent killed by signal n as exit code 128 + n: report the signal instead. */
function exitOf(code: number | null, signal: NodeJS.Signals | null): ProcessExit {
  const killedBy = code !== null && code > 128 ? signalNames.get(code - 128) : undefined;
  return killedBy ? { code: null, signal: killedBy } : { code, signal };
}

/** Splits a text stream into lines, cutting lines over MAX_LINE_CHARS; flush() emits a last partial line. */
function lineSplitter(emit: (line: string) => void) {
  let partial = "";
  // The start of an over-long line was emitted already: drop the rest up to its newline.
  let dropping = false;
  const send = (line: string) =>
    emit((line.endsWith("\r") ? line.slice(0, -1) : line).slice(0, MAX_LINE_CHARS));
  return {
    push(chunk: string): void {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        if (!dropping) send(line);
        dropping = false;
      }
      if (partial.length > MAX_LINE_CHARS) {
        if (!dropping) send(partial);
        dropping = true;
        partial = "";
      }
    },
    flush(): void {
      if (partial !== "" && !dropping) send(partial);
      partial = "";
      dropping = false;
    },
  };
}

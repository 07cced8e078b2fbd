import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";

const ROOT = new URL("../..", import.meta.url).pathname;

/** Steward run as its own process from the sources (`steward serve`, `steward worker`). */
export interface StewardProcess {
  child: ChildProcess;
  /** Waits until it writes a line matching `pattern`; throws with what it wrote if it exits first. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Sends `signal` and waits for the process to exit. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

export function spawnSteward(command: "serve" | "worker", env: Record<string, string>): StewardProcess {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", command], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk) => (output += chunk));
  child.stderr?.on("data", (chunk) => (output += chunk));
  return {
    child,
    async waitForOutput(pattern, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(output)) {
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(`steward ${command} exited:\n${output}`);
        if (Date.now() > deadline) throw new Error(`steward ${command} never wrote ${pattern}:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async kill(signal) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill(signal);
      await exited;
    },
  };
}

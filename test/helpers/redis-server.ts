import { type ChildProcess, spawn } from "node:child_process";
import { stopProcess } from "./child-process.js";
import { freePort } from "./ports.js";

/** A throwaway redis-server a test can stop, start again on the same port, freeze and thaw. */
export interface RestartableRedisServer {
  url: string;
  /** Stops it (SIGTERM); nothing is persisted, so it comes back empty as a restarted cache would. */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  /** SIGSTOP: connections stay open and nothing answers. */
  freeze(): void;
  /** SIGCONT after `freeze`. */
  thaw(): void;
  /** Stops it for good, frozen or not. */
  dispose(): Promise<void>;
}

export async function startRestartableRedisServer(): Promise<RestartableRedisServer> {
  const port = await freePort();
  let child = await launch(port);
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => stopProcess(child),
    async start() {
      child = await launch(port);
    },
    freeze: () => child.kill("SIGSTOP"),
    thaw: () => child.kill("SIGCONT"),
    async dispose() {
      child.kill("SIGCONT");
      await stopProcess(child);
    },
  };
}

async function launch(port: number): Promise<ChildProcess> {
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--logfile", ""],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  await new Promise<void>((resolve, reject) => {
    let log = "";
    const timer = setTimeout(() => fail(`redis-server not ready after 10 s`), 10_000);
    const fail = (reason: string) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`${reason}:\n${log}`));
    };
    child.once("error", (error) => fail(`redis-server could not start (${error.message})`));
    child.once("exit", (code) => fail(`redis-server exited with ${code}`));
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      log += chunk;
      if (!log.includes("Ready to accept connections")) return;
      clearTimeout(timer);
      // Keep draining the log without holding it, so the server never blocks on a full pipe.
      child.stdout?.removeAllListeners("data");
      child.stdout?.resume();
      resolve();
    });
  });
  child.stderr?.resume();
  return child;
}

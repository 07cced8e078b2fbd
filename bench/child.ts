import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { closeSync, openSync, readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { freePort } from "../test/helpers/ports.js";

const ROOT = new URL("..", import.meta.url).pathname;
const LOG_DIR = join(ROOT, "bench/results/logs");

/** A server the bench runs as its own process, so its CPU and memory are its own. */
export interface BenchProcess {
  name: string;
  pid: number;
  /** http://127.0.0.1:<port> */
  url: string;
  /** The most resident memory the process has held so far (Linux VmHWM), in MB. */
  peakRssMb(): number;
  /** CPU time (user + system) the process has used so far, in seconds. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/**
 * Starts `node <args>` with `PORT` set and waits until `GET <readyPath>` answers 2xx.
 * Its output goes to bench/results/logs/<name>.log, read back when it fails to start.
 */
export async function startProcess(
  name: string,
  args: readonly string[],
  env: Record<string, string>,
  readyPath = "/",
): Promise<BenchProcess> {
  await mkdir(LOG_DIR, { recursive: true });
  const port = await freePort();
  const logFile = join(LOG_DIR, `${name}.log`);
  const log = openSync(logFile, "w");
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ["ignore", log, log],
  });
  closeSync(log);
  const url = `http://127.0.0.1:${port}`;
  await waitUntilReady(child, `${url}${readyPath}`, logFile);
  const pid = child.pid as number;
  return {
    name,
    pid,
    url,
    peakRssMb: () => peakRssMb(pid),
    cpuSeconds: () => cpuSeconds(pid),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** A TypeScript file of the bench run as its own process. */
export function startScript(name: string, script: string, env: Record<string, string> = {}) {
  return startProcess(name, ["--import", "tsx", script], env);
}

async function waitUntilReady(child: ChildProcess, url: string, logFile: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${url} exited before it was ready:\n${readFileSync(logFile, "utf8")}`);
    }
    try {
      const answer = await fetch(url, { method: "GET" });
      await answer.arrayBuffer();
      if (answer.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${url} was not ready within 60 s:\n${readFileSync(logFile, "utf8")}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kilobytes = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1]);
  return Math.round(kilobytes / 1024);
}

/** utime + stime from /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s on Linux). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

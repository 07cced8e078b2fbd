import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "./ports.js";
import { uniqueRedisPrefix, uniqueSchema } from "./schema.js";
import { TEST_DATABASE_URL, TEST_REDIS_URL } from "./services.js";

const ROOT = new URL("../..", import.meta.url).pathname;
const BUILT_MAIN = join(ROOT, "dist/main.js");

/**
 * `node dist/main.js`, as the Dockerfile runs it: the build `npm test` makes first starts in
 * half the time of compiling the sources at every start. A build older than the sources
 * would test old code, so it is refused.
 */
export function stewardCommand(args: string[]): [string, string[]] {
  // The build is incremental: a source's output is written only when it changed.
  const built = statSync(BUILT_MAIN, { throwIfNoEntry: false }) && newest(join(ROOT, "dist"), "web");
  if (!built || built < newest(join(ROOT, "src")))
    throw new Error("dist/ is missing or older than src/: run `npm run build` (npm test does it first)");
  return [process.execPath, [BUILT_MAIN, ...args]];
}

/** The latest modification time of a file under `dir` (leaving out the folder named `skip`). */
function newest(dir: string, skip?: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === skip) continue;
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

/** Steward run as its own process from the build (`steward serve`, `steward worker`). */
export interface StewardProcess {
  child: ChildProcess;
  /** Everything it wrote so far, stdout and stderr interleaved. */
  output(): string;
  /** Waits until it writes a line matching `pattern`; throws with what it wrote if it exits first. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Sends `signal` and waits for the process to exit. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

export function spawnSteward(command: "serve" | "worker", env: Record<string, string>): StewardProcess {
  const [node, args] = stewardCommand([command]);
  const child = spawn(node, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk) => (output += chunk));
  child.stderr?.on("data", (chunk) => (output += chunk));
  return {
    child,
    output: () => output,
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

/**
 * `steward serve` on `port` (a free one unless given), once it listens. One that does not
 * come up is killed before the error goes out, so no process outlives its test.
 */
export async function startStewardServer(
  env: Record<string, string>,
  port?: number,
): Promise<{ steward: StewardProcess; port: number; url: string }> {
  const listenOn = port ?? (await freePort());
  const steward = spawnSteward("serve", { ...env, PORT: String(listenOn) });
  try {
    await steward.waitForOutput(/Server listening/);
  } catch (error) {
    await steward.kill("SIGKILL");
    throw error;
  }
  return { steward, port: listenOn, url: `http://127.0.0.1:${listenOn}` };
}

/**
 * What the Steward processes of one test share: a schema and Redis prefix of their own,
 * the first admin key and an encryption key; `extra` adds or overrides settings.
 */
export function stewardEnvironment(extra: Record<string, string> = {}) {
  const adminKey = `sk_live_${randomBytes(24).toString("hex")}`;
  const schema = uniqueSchema();
  return {
    adminKey,
    schema,
    /** What a client of that Steward sends with each call. */
    headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
    env: {
      DATABASE_URL: TEST_DATABASE_URL,
      STEWARD_DB_SCHEMA: schema,
      REDIS_URL: TEST_REDIS_URL,
      STEWARD_REDIS_PREFIX: uniqueRedisPrefix(),
      // See invokeEnv: exact admission counts must not depend on Redis answering in 50 ms.
      STEWARD_RATE_LIMIT_TIMEOUT_MS: "1000",
      STEWARD_BOOTSTRAP_ADMIN_KEY: adminKey,
      STEWARD_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
      STEWARD_ALLOW_PRIVATE_NETWORKS: "127.0.0.1/32",
      HOST: "127.0.0.1",
      LOG_LEVEL: "info",
      ...extra,
    },
  };
}

import { execFile } from "node:child_process";
import { chown, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./ports.js";

const run = promisify(execFile);

/** A throwaway PostgreSQL cluster on 127.0.0.1 that a test can stop and start again on the same port. */
export interface RestartablePostgres {
  /** Connection URL of its `postgres` database, user `postgres`, trust auth. */
  url: string;
  /** `fast` rolls back open transactions and closes connections; `immediate` is a crash. */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  /** Starts it again on the same port with the same data; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops it for good and removes its data directory. */
  dispose(): Promise<void>;
}

/**
 * Creates a cluster with Debian's PostgreSQL binaries (initdb takes a couple of seconds)
 * and starts it. PostgreSQL refuses to run as root, so under root the server runs as the
 * `postgres` user the package created.
 */
export async function startRestartablePostgres(): Promise<RestartablePostgres> {
  const bin = await postgresBinDir();
  const dataDir = await mkdtemp(join(tmpdir(), "steward-pg-"));
  const asRoot = process.getuid?.() === 0;
  const postgresUser = asRoot ? await postgresIds() : undefined;
  if (postgresUser) await chown(dataDir, postgresUser.uid, postgresUser.gid);
  const pgTool = (tool: string, args: string[]) =>
    asRoot ? run("runuser", ["-u", "postgres", "--", join(bin, tool), ...args]) : run(join(bin, tool), args);
  const port = await freePort();
  const serverOptions = `-p ${port} -k ${dataDir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  const start = async () => {
    await pgTool("pg_ctl", [
      "-D",
      dataDir,
      "-o",
      serverOptions,
      "-l",
      join(dataDir, "server.log"),
      "-w",
      "-t",
      "30",
      "start",
    ]);
  };
  const stop = async (mode: "fast" | "immediate" = "fast") => {
    await pgTool("pg_ctl", ["-D", dataDir, "-m", mode, "-w", "-t", "30", "stop"]);
  };
  // The server runs detached, so nothing else would stop it: any failure from here on
  // takes the cluster down and its files away before it is reported.
  const dispose = async () => {
    await stop("immediate").catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    await pgTool("initdb", [
      "-D",
      dataDir,
      "-U",
      "postgres",
      "-A",
      "trust",
      "--no-sync",
      "--no-instructions",
    ]);
    await start();
  } catch (error) {
    await dispose();
    throw error;
  }
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, stop, start, dispose };
}

/** The newest of Debian's installed PostgreSQL versions. */
async function postgresBinDir(): Promise<string> {
  const versions = (await readdir("/usr/lib/postgresql")).sort((a, b) => Number(b) - Number(a));
  if (!versions[0]) throw new Error("no PostgreSQL under /usr/lib/postgresql");
  return join("/usr/lib/postgresql", versions[0], "bin");
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const { stdout: uid } = await run("id", ["-u", "postgres"]);
  const { stdout: gid } = await run("id", ["-g", "postgres"]);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}

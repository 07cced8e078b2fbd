import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm, rmdir } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { acquireDirectoryLock } from "./directory-lock.js";

export interface EmbeddedPostgres {
  connection: { host: string; port: number; user: string; database: string };
  stop(): Promise<void>;
}

const SOCKET_PORT = 5432;

/**
 * A development database needs little cache; PostgreSQL's default of 128 MB would be
 * most of the embedded default's memory.
 */
const SETTINGS = ["shared_buffers = 16MB"];

/** Creates a PGlite database in the directory given as the first argument, then exits. */
const INITDB_SCRIPT = `
const [entry, dataDir] = process.argv.slice(1);
const { PGlite } = await import(entry);
const db = await PGlite.create(dataDir);
await db.close();
`;

/**
 * Creating a database runs initdb inside PGlite's WebAssembly, which takes close to
 * 1 GB that the process would hold from then on. A first start therefore creates it in
 * a short-lived child process, in a staging directory moved into place only once it is
 * complete: an interrupted creation is started over, never opened half-made.
 */
async function initialise(pgdata: string): Promise<void> {
  const staging = `${pgdata}.creating`;
  await rm(staging, { recursive: true, force: true });
  const entry = pathToFileURL(createRequire(import.meta.url).resolve("@electric-sql/pglite")).href;
  const child = spawn(process.execPath, ["--input-type=module", "-e", INITDB_SCRIPT, entry, staging], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let errors = "";
  child.stderr.on("data", (chunk) => (errors += chunk));
  const [code, signal] = await once(child, "exit");
  if (code !== 0) {
    const cause = signal ? `killed by ${signal}` : errors.trim();
    throw new Error(`creating the embedded database in ${pgdata} failed: ${cause}`);
  }
  // An empty directory left by an earlier version is replaced; one holding files is not ours to remove.
  await rmdir(pgdata).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "ENOENT") throw new Error(`${pgdata} exists but holds no database; move it away`);
  });
  await rename(staging, pgdata);
}

/**
 * Starts PGlite on `<dataDir>/pgdata` and serves it on a private Unix socket, so the
 * rest of Steward talks to it with the same `pg` driver it uses for PostgreSQL.
 * PGlite cannot be shared between processes, hence the lock on the data dir.
 */
export async function startEmbeddedPostgres(dataDir: string): Promise<EmbeddedPostgres> {
  const pgdata = resolve(dataDir, "pgdata");
  await mkdir(dataDir, { recursive: true });
  const lock = await acquireDirectoryLock(resolve(dataDir));
  try {
    if (!existsSync(join(pgdata, "PG_VERSION"))) await initialise(pgdata);
    const db = await PGlite.create(pgdata, { postgresqlconf: SETTINGS });
    const socketDir = await mkdtemp(join(tmpdir(), "steward-pglite-"));
    const server = new PGLiteSocketServer({
      db,
      path: join(socketDir, `.s.PGSQL.${SOCKET_PORT}`),
      // Steward's pool holds one live connection, but a replacement may arrive before the
      // server has seen the one it replaces close. Only one is ever in use, so their
      // transactions cannot interleave in PGlite's single session.
      maxConnections: 4,
    });
    await server.start();
    return {
      connection: { host: socketDir, port: SOCKET_PORT, user: "postgres", database: "postgres" },
      async stop() {
        await server.stop();
        await db.close();
        await rm(socketDir, { recursive: true, force: true });
        await lock.release();
      },
    };
  } catch (error) {
    await lock.release();
    throw error;
  }
}

import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, rename, rm, rmdir } from "node:fs/promises";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import { acquireDirectoryLock } from "./directory-lock.js";
import { PGliteConnection } from "./pglite-connection.js";

export interface EmbeddedPostgres {
  /** What `pg` connects with: a stream to PGlite rather than a host and port. */
  connection: { stream: () => PGliteConnection; ssl: false; user: string; database: string };
  stop(): Promise<void>;
}

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
 * Starts PGlite on `<dataDir>/pgdata`, which the rest of Steward reaches with the same
 * `pg` driver it uses for PostgreSQL, over connections in process (`PGliteConnection`).
 * PGlite cannot be shared between processes, hence the lock on the data dir.
 */
export async function startEmbeddedPostgres(dataDir: string): Promise<EmbeddedPostgres> {
  const pgdata = resolve(dataDir, "pgdata");
  await mkdir(dataDir, { recursive: true });
  const lock = await acquireDirectoryLock(resolve(dataDir));
  try {
    if (!existsSync(join(pgdata, "PG_VERSION"))) await initialise(pgdata);
    const db = await PGlite.create(pgdata, { postgresqlconf: SETTINGS });
    return {
      // No TLS to ask for (PGSSLMODE in the environment would make the driver ask).
      connection: {
        stream: () => new PGliteConnection(db),
        ssl: false,
        user: "postgres",
        database: "postgres",
      },
      async stop() {
        await db.close();
        await lock.release();
      },
    };
  } catch (error) {
    await lock.release();
    throw error;
  }
}

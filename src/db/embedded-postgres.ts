import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { acquireDirectoryLock } from "./directory-lock.js";

export interface EmbeddedPostgres {
  connection: { host: string; port: number; user: string; database: string };
  stop(): Promise<void>;
}

const SOCKET_PORT = 5432;

/**
 * Starts PGlite on `<dataDir>/pgdata` and serves it on a private Unix socket, so the
 * rest of Steward talks to it with the same `pg` driver it uses for PostgreSQL.
 * PGlite cannot be shared between processes, hence the lock on the data dir.
 */
export async function startEmbeddedPostgres(dataDir: string): Promise<EmbeddedPostgres> {
  const pgdata = resolve(dataDir, "pgdata");
  await mkdir(pgdata, { recursive: true });
  const lock = await acquireDirectoryLock(resolve(dataDir));
  try {
    const db = await PGlite.create(pgdata);
    const socketDir = await mkdtemp(join(tmpdir(), "steward-pglite-"));
    const server = new PGLiteSocketServer({ db, path: join(socketDir, `.s.PGSQL.${SOCKET_PORT}`) });
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

import { drizzle, type NodePgDatabase } from "drizzle-orm/node-postgres";
import pg from "pg";
import type { Logger } from "pino";
import type { DatabaseConfig } from "../config.js";
import { startEmbeddedPostgres } from "./embedded-postgres.js";
import { preparingClient, StatementCache } from "./statement-cache.js";

/**
 * Without a schema bound: Steward builds its queries itself and never uses Drizzle's
 * relational `db.query` API, whose builders would otherwise be made for every table at
 * the start of every transaction.
 */
export type Db = NodePgDatabase;
/** A database handle or an open transaction: services accept either. */
export type DbOrTx = Db | Parameters<Parameters<Db["transaction"]>[0]>[0];

export interface Database {
  db: Db;
  pool: pg.Pool;
  /** "embedded" (PGlite) or "postgres" — for health output and logs, never for branching. */
  kind: DatabaseConfig["kind"];
  /** Schema holding Steward's tables. */
  schema: string;
  ping(): Promise<void>;
  close(): Promise<void>;
}

// PostgreSQL returns int8 and numeric as strings by default; Steward's counts and
// money amounts fit comfortably in a double.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (value) => Number(value));

/**
 * Opens the SQL store. Both modes end in the same place — a `pg` pool and Drizzle —
 * because the embedded PGlite is served over the PostgreSQL wire protocol in process.
 */
export async function openDatabase(config: DatabaseConfig, logger: Logger): Promise<Database> {
  if (config.kind === "embedded") {
    const embedded = await startEmbeddedPostgres(config.dataDir);
    // PGlite is a single session: one connection, queries queue in the pool. No statement
    // cache: its statements would be cleared under it whenever the connection is replaced.
    const pool = new pg.Pool({
      ...embedded.connection,
      max: 1,
      // The session outlives its connections: one replacing a connection the pool dropped
      // (pg-pool drops the connection of a failed query) would find the last one's named
      // statements (Drizzle's prepared queries) still there, and fail to prepare them.
      onConnect: (client) => client.query("DEALLOCATE ALL"),
    });
    return wrap(pool, "embedded", "public", logger, embedded.stop);
  }
  const pool = new pg.Pool({
    connectionString: config.connectionString,
    max: config.poolSize,
    options: `-c search_path=${config.schema}`,
    connectionTimeoutMillis: 5_000,
    ...(config.preparedStatements !== false && { Client: preparingClient(new StatementCache()) }),
  });
  return wrap(pool, "postgres", config.schema, logger, async () => {});
}

function wrap(
  pool: pg.Pool,
  kind: Database["kind"],
  schemaName: string,
  logger: Logger,
  stopServer: () => Promise<void>,
): Database {
  // An idle client losing its connection emits here; without a listener it would crash the process.
  pool.on("error", (error) => logger.error({ err: error }, "database connection error"));
  // So may a client checked out for a transaction: its query fails with the same error,
  // and the pool drops the client when it is released.
  pool.on("connect", (client) =>
    client.on("error", (error) => logger.warn({ err: error }, "database connection lost mid-query")),
  );
  return {
    db: drizzle(pool),
    pool,
    kind,
    schema: schemaName,
    async ping() {
      await pool.query("SELECT 1");
    },
    async close() {
      await pool.end();
      await stopServer();
    },
  };
}

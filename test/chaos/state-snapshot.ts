import type { Redis } from "ioredis";
import pg from "pg";
import { TEST_DATABASE_URL } from "../helpers/services.js";

/**
 * Everything Steward keeps, as checksums: one per table of its schema (an md5 over the
 * table's rows as text, in a fixed order) and one per Redis key under its prefix. Two
 * snapshots that differ name exactly what changed in between.
 */
export type StateSnapshot = Record<string, string>;

/**
 * The only table that changes while nobody asks anything: every scheduler renews its
 * duty lease each second, so its rows say nothing about what a request did.
 */
const SELF_RENEWING_TABLES = new Set(["duty_leases"]);

/** Rows a check leaves out of one table's checksum: a SQL condition over the table's alias `t`. */
export type RowFilter = Record<string, string>;

export interface StateObserver {
  snapshot(filter?: RowFilter): Promise<StateSnapshot>;
  /** A SQL string literal, for building a RowFilter from a value. */
  literal(value: string): string;
  close(): Promise<void>;
}

/**
 * Watches one Steward's schema and Redis key prefix through a connection of its own (not
 * Steward's pool), so observing cannot change what it observes.
 */
export async function observeState(
  schema: string,
  redis: Redis,
  redisPrefix: string,
): Promise<StateObserver> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  const { rows } = await client.query<{ table_name: string }>(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY 1",
    [schema],
  );
  const tables = rows.map((row) => row.table_name).filter((table) => !SELF_RENEWING_TABLES.has(table));
  if (tables.length === 0) throw new Error(`schema ${schema} has no tables to watch`);

  const tableChecksums = async (filter: RowFilter): Promise<StateSnapshot> => {
    const selects = tables.map((table) => {
      const where = filter[table] ? ` WHERE ${filter[table]}` : "";
      return `SELECT ${client.escapeLiteral(table)} AS name, md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS sum FROM ${client.escapeIdentifier(schema)}.${client.escapeIdentifier(table)} t${where}`;
    });
    const result = await client.query<{ name: string; sum: string }>(selects.join(" UNION ALL "));
    return Object.fromEntries(result.rows.map((row) => [`table ${row.name}`, row.sum]));
  };

  const redisChecksums = async (): Promise<StateSnapshot> => {
    const keys: string[] = [];
    let cursor = "0";
    do {
      const [next, found] = await redis.scan(cursor, "MATCH", `${redisPrefix}*`, "COUNT", 1000);
      keys.push(...found);
      cursor = next;
    } while (cursor !== "0");
    const dumps = await Promise.all(keys.map((key) => redis.dumpBuffer(key)));
    return Object.fromEntries(
      keys.map((key, index) => [`redis ${key}`, dumps[index]?.toString("hex") ?? ""]),
    );
  };

  return {
    async snapshot(filter = {}) {
      return { ...(await tableChecksums(filter)), ...(await redisChecksums()) };
    },
    literal: (value) => client.escapeLiteral(value),
    close: () => client.end(),
  };
}

/** What differs between two snapshots: tables and keys changed, added or removed. */
export function changesBetween(before: StateSnapshot, after: StateSnapshot): string[] {
  const names = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...names].filter((name) => before[name] !== after[name]).sort();
}

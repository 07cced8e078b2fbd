import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Redis } from "ioredis";
import { TEST_DATABASE_URL, TEST_REDIS_URL } from "../helpers/services.js";

/**
 * Canary secrets and the places they are looked for: every text a place holds is
 * searched for every spelling of every canary.
 */

const run = promisify(execFile);

export interface Canary {
  /** What the secret is, as a reader of a failure would name it. */
  label: string;
  value: string;
  /** Every spelling a leak could take: the value, and e.g. the Basic header built from it. */
  spellings: string[];
}

/** `sk-CANARY-` and 24 random hex digits: no encoding (URL, JSON, header) changes how it is written. */
export function newCanary(label: string, ...derived: Array<(value: string) => string>): Canary {
  const value = `sk-CANARY-${randomBytes(12).toString("hex")}`;
  return { label, value, spellings: [value, ...derived.map((derive) => derive(value))] };
}

/** A canary shaped as @BotFather's tokens are (`<bot id>:<secret>`), which registration checks. */
export function botTokenCanary(label: string): Canary {
  const value = `4242:${newCanary(label).value}`;
  return { label, value, spellings: [value] };
}

/** How often `needle` occurs in `text`, without overlaps. */
export function occurrences(text: string, needle: string): number {
  let count = 0;
  for (let at = text.indexOf(needle); at !== -1; at = text.indexOf(needle, at + needle.length)) count++;
  return count;
}

/** How often each spelling of `canary` occurs in `texts`, all together. */
export function sightings(canary: Canary, texts: readonly string[]): number {
  let count = 0;
  for (const text of texts) for (const spelling of canary.spellings) count += occurrences(text, spelling);
  return count;
}

/** Every message published on a NATS server, subject, headers and payload as one text each. */
export async function recordNatsTraffic(
  url: string,
): Promise<{ texts: string[]; connection: NatsConnection }> {
  const connection = await connect({ servers: url });
  const texts: string[] = [];
  connection.subscribe(">", {
    callback: (_error, message) => {
      const headers = message.headers
        ? [...message.headers].map(([name, values]) => `${name}: ${values}`)
        : [];
      texts.push([message.subject, ...headers, message.string()].join("\n"));
    },
  });
  // The subscription is in place once the server has seen it.
  await connection.flush();
  return { texts, connection };
}

/** Every message on the Redis pub/sub channels matching `pattern`, channel and payload as one text each. */
export async function recordRedisMessages(pattern: string): Promise<{ texts: string[]; connection: Redis }> {
  const connection = new Redis(TEST_REDIS_URL);
  const texts: string[] = [];
  connection.on("pmessage", (_pattern: string, channel: string, message: string) =>
    texts.push(`${channel}\n${message}`),
  );
  await connection.psubscribe(pattern);
  return { texts, connection };
}

/** Every key under `prefix` with its value, read according to its type (DUMP for a type not read here). */
export async function redisKeysAndValues(redis: Redis, prefix: string): Promise<string[]> {
  const texts: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    cursor = next;
    for (const key of keys) texts.push(`${key}\n${await redisValue(redis, key)}`);
  } while (cursor !== "0");
  return texts;
}

async function redisValue(redis: Redis, key: string): Promise<string> {
  const type = await redis.type(key);
  const values: Record<string, () => Promise<unknown>> = {
    string: () => redis.get(key),
    hash: () => redis.hgetall(key),
    list: () => redis.lrange(key, 0, -1),
    set: () => redis.smembers(key),
    zset: () => redis.zrange(key, "0", "-1", "WITHSCORES"),
    stream: () => redis.xrange(key, "-", "+"),
  };
  const read = values[type];
  if (read) return JSON.stringify(await read());
  // DUMP's serialization can compress a long value, so it is only the fallback.
  return (await redis.dumpBuffer(key))?.toString("latin1") ?? "";
}

/**
 * `pg_dump --data-only` of one schema of the test database, with the pg_dump of the
 * server's own major version (an older one refuses a newer server).
 */
export async function dumpSchemaData(schema: string, serverVersion: string): Promise<string> {
  const major = serverVersion.split(".")[0] ?? "";
  const installed = await readdir("/usr/lib/postgresql");
  if (!installed.includes(major))
    throw new Error(`no pg_dump ${major} in /usr/lib/postgresql (${installed})`);
  const { stdout } = await run(
    join("/usr/lib/postgresql", major, "bin", "pg_dump"),
    [`--dbname=${TEST_DATABASE_URL}`, `--schema=${schema}`, "--data-only"],
    { maxBuffer: 256 * 1024 * 1024 },
  );
  return stdout;
}

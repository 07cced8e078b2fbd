import { parseArgs } from "node:util";
import type { Logger } from "pino";
import { type Config, ConfigError } from "../config.js";
import { type Database, openDatabase } from "../db/database.js";
import { DirectoryInUseError } from "../db/directory-lock.js";
import { createSecretBox } from "./key-ring.js";
import {
  type RotationFailure,
  type RotationResult,
  rotateStoredSecrets,
  type TableResult,
} from "./key-rotation.js";
import { keyIdOf, parseEncryptionKey } from "./secret-box.js";

// `steward keys rotate [--dry-run]`: the command around src/crypto/key-rotation.ts.

/** A progress line per this many rows of a large table, besides the line when a table is done. */
const PROGRESS_EVERY_ROWS = 1_000;
/** PostgreSQL's undefined_table. */
const UNDEFINED_TABLE = "42P01";

/** Some values could not be opened; every other one was re-sealed. The message names no secret. */
export class KeyRotationIncompleteError extends Error {
  constructor(readonly failures: readonly RotationFailure[]) {
    const rows = new Set(failures.map((failure) => `${failure.table}/${failure.id}`)).size;
    super(
      `${failures.length} secret(s) in ${rows} row(s) cannot be re-encrypted (listed above); ` +
        "keep the old keys configured, re-enter those secrets and run the command again",
    );
    this.name = "KeyRotationIncompleteError";
  }
}

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

function counts(
  result: Pick<TableResult, "resealed" | "changedRows" | "current">,
  keyId: string,
  dryRun: boolean,
) {
  const verb = dryRun ? "would re-encrypt" : "re-encrypted";
  return `${verb} ${result.resealed} secret(s) in ${result.changedRows} row(s); ${result.current} already on key ${keyId}`;
}

function total(result: RotationResult): Pick<TableResult, "resealed" | "changedRows" | "current"> {
  const sum = (pick: (table: TableResult) => number) =>
    result.tables.reduce((n, table) => n + pick(table), 0);
  return {
    resealed: sum((table) => table.resealed),
    changedRows: sum((table) => table.changedRows),
    current: sum((table) => table.current),
  };
}

async function open(config: Config, logger: Logger): Promise<Database> {
  try {
    return await openDatabase(config.database, logger);
  } catch (error) {
    if (error instanceof DirectoryInUseError) {
      throw new Error(
        `${error.message}; stop it first: on the embedded store the command needs the data dir to itself`,
      );
    }
    throw error;
  }
}

/** Runs `keys rotate`; throws (and the process exits non-zero) when any value cannot be opened. */
export async function rotateKeys(config: Config, logger: Logger, args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { "dry-run": { type: "boolean", default: false } } });
  const dryRun = values["dry-run"];
  // Without it the key would be the development key file's, or a freshly generated one.
  if (!config.encryptionKey) {
    throw new ConfigError(
      "STEWARD_ENCRYPTION_KEY",
      "is required by `steward keys rotate`: set it to the new key and list the old one in STEWARD_ENCRYPTION_PREVIOUS_KEYS",
    );
  }
  const box = await createSecretBox(config, logger);
  // Valid: createSecretBox has parsed them.
  const previous = config.previousEncryptionKeys.map((text) => keyIdOf(parseEncryptionKey(text)));
  const database = await open(config, logger);
  let result: RotationResult;
  try {
    print(
      `${dryRun ? "Dry run (nothing is written): counting" : "Re-encrypting"} stored secrets with key ${box.currentKeyId}` +
        (previous.length > 0 ? `; previous key(s): ${previous.join(", ")}` : "; no previous keys configured"),
    );
    let reported = 0;
    result = await rotateStoredSecrets(database.pool, box, {
      dryRun,
      onProgress(progress) {
        if (progress.rows - reported < PROGRESS_EVERY_ROWS) return;
        reported = progress.rows;
        print(`  ${progress.table}: ${progress.rows} row(s) read so far`);
      },
    });
  } catch (error) {
    if ((error as { code?: unknown }).code === UNDEFINED_TABLE) {
      throw new Error(
        `the database (schema ${database.schema}) has no Steward tables; run \`steward migrate\` first`,
      );
    }
    throw error;
  } finally {
    await database.close();
  }
  for (const table of result.tables) {
    const failed = table.failures.length > 0 ? `; ${table.failures.length} not re-encrypted` : "";
    print(`  ${table.table}: ${table.rows} row(s): ${counts(table, result.keyId, dryRun)}${failed}`);
  }
  print(counts(total(result), result.keyId, dryRun));
  const failures = result.tables.flatMap((table) => table.failures);
  if (failures.length === 0) return;
  process.stderr.write("Not re-encrypted (the rest were):\n");
  for (const failure of failures) {
    process.stderr.write(`  ${failure.table} ${failure.id} ${failure.field}: ${failure.reason}\n`);
  }
  throw new KeyRotationIncompleteError(failures);
}

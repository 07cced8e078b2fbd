import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import { ConfigError } from "../config.js";
import { parseEncryptionKey, SecretBox } from "./secret-box.js";

const DEV_KEY_FILE = "encryption.key";

/**
 * Builds the SecretBox from configuration. In development without a key, one is
 * generated once into the data dir (and reused after), with a warning: losing that
 * file makes every stored credential unreadable.
 */
export async function createSecretBox(config: Config, logger: Logger): Promise<SecretBox> {
  const previous = config.previousEncryptionKeys.map((text, index) =>
    parseOrExplain(text, `STEWARD_ENCRYPTION_PREVIOUS_KEYS (entry ${index + 1})`),
  );
  if (config.encryptionKey) {
    return new SecretBox(parseOrExplain(config.encryptionKey, "STEWARD_ENCRYPTION_KEY"), previous);
  }
  const path = join(config.dataDir, DEV_KEY_FILE);
  const existing = await readFile(path, "utf8").catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return undefined;
    throw error;
  });
  if (existing !== undefined) {
    return new SecretBox(parseOrExplain(existing.trim(), path), previous);
  }
  await mkdir(config.dataDir, { recursive: true });
  const key = randomBytes(32);
  await writeFile(path, `${key.toString("base64")}\n`, { mode: 0o600, flag: "wx" });
  logger.warn(
    { path },
    "STEWARD_ENCRYPTION_KEY is not set: generated a development encryption key. Back this file up; set STEWARD_ENCRYPTION_KEY in production.",
  );
  return new SecretBox(key, previous);
}

function parseOrExplain(text: string, source: string): Buffer {
  try {
    return parseEncryptionKey(text);
  } catch {
    throw new ConfigError(source, "must be 32 bytes, given as 64 hex characters or base64");
  }
}

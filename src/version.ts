import { readFileSync } from "node:fs";

/** The version from package.json, read once at start-up (one level up from src/ or dist/). */
export const STEWARD_VERSION: string = JSON.parse(
  readFileSync(new URL("../package.json", import.meta.url), "utf8"),
).version;

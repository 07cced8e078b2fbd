import type { Dirent } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import {
  type AgentPackage,
  CONFIG_SCHEMA_FILE,
  DISCOVERY_FILE,
  type PackageProblem,
  parseAgentPackage,
} from "./agent-package.js";

/** What one scan of the agents directory found. */
export interface ScanResult {
  directory: string;
  directoryMissing: boolean;
  packages: AgentPackage[];
  problems: PackageProblem[];
}

/** Outcome for one package folder, in folder order; `null` when the folder holds no package. */
type FolderOutcome = { ok: true; package: AgentPackage } | { ok: false; problem: PackageProblem } | null;

/** True for a child name that may hold a package: not hidden, not a dependency folder. */
export function isPackageFolderName(name: string): boolean {
  return !name.startsWith(".") && name !== "node_modules";
}

/** Reads every direct sub-folder of `directory` and returns its valid packages (sorted by folder name) and problems. */
export async function scanAgentsDirectory(directory: string): Promise<ScanResult> {
  const root = path.resolve(directory);
  const result: ScanResult = { directory: root, directoryMissing: false, packages: [], problems: [] };
  let entries: Dirent[];
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (error) {
    if (errorCode(error) === "ENOENT") return { ...result, directoryMissing: true };
    return {
      ...result,
      problems: [{ file: root, reason: `cannot read the agents directory: ${messageOf(error)}` }],
    };
  }
  const folders = await packageFolders(root, entries);
  const outcomes = refuseClashes(await Promise.all(folders.map((folder) => readPackage(folder))));
  for (const outcome of outcomes) {
    if (outcome?.ok) result.packages.push(outcome.package);
    else if (outcome) result.problems.push(outcome.problem);
  }
  return result;
}

/** Absolute paths of candidate folders, sorted by name (code-unit order, so the result is locale-independent). */
async function packageFolders(root: string, entries: Dirent[]): Promise<string[]> {
  const candidates = entries
    .filter((entry) => isPackageFolderName(entry.name))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const keep = await Promise.all(
    candidates.map(
      async (entry) =>
        entry.isDirectory() || (entry.isSymbolicLink() && (await isDirectory(path.join(root, entry.name)))),
    ),
  );
  return candidates.filter((_, index) => keep[index]).map((entry) => path.join(root, entry.name));
}

/** Follows a symlink, so a package linked in from elsewhere (a dev checkout) is discovered too. */
async function isDirectory(target: string): Promise<boolean> {
  try {
    return (await stat(target)).isDirectory();
  } catch {
    return false; // a dangling link holds no package
  }
}

/** Reads and validates one folder; a folder without `.env.discovery` is not a package and is skipped silently. */
async function readPackage(directory: string): Promise<FolderOutcome> {
  const envFile = path.join(directory, DISCOVERY_FILE);
  const envText = await readOptional(envFile);
  if (envText === undefined) return null;
  if (typeof envText !== "string") return unreadable(envFile, envText.error);

  const schemaFile = path.join(directory, CONFIG_SCHEMA_FILE);
  const schemaText = await readOptional(schemaFile);
  if (schemaText !== undefined && typeof schemaText !== "string")
    return unreadable(schemaFile, schemaText.error);
  return parseAgentPackage({ directory, envText, ...(schemaText === undefined ? {} : { schemaText }) });
}

/** A file's text, `undefined` when it does not exist, or the read error. */
async function readOptional(file: string): Promise<string | undefined | { error: unknown }> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    return { error };
  }
}

function unreadable(file: string, error: unknown): FolderOutcome {
  return { ok: false, problem: { file, reason: `cannot read ${path.basename(file)}: ${messageOf(error)}` } };
}

/**
 * Refuses packages that share an AGENT_NAME. Different versions are ambiguous, so all of
 * them are refused; the same version twice is a copy, so the first folder keeps it.
 */
function refuseClashes(outcomes: FolderOutcome[]): FolderOutcome[] {
  const byName = new Map<string, AgentPackage[]>();
  for (const outcome of outcomes) {
    if (!outcome?.ok) continue;
    const group = byName.get(outcome.package.name) ?? [];
    group.push(outcome.package);
    byName.set(outcome.package.name, group);
  }
  return outcomes.map((outcome) => {
    if (!outcome?.ok) return outcome;
    const group = byName.get(outcome.package.name) ?? [];
    const reason = clashReason(outcome.package, group);
    return reason === null ? outcome : { ok: false, problem: { file: outcome.package.file, reason } };
  });
}

/** Why `pkg` is refused given every package declaring its name (in folder order), or `null` if it is kept. */
function clashReason(pkg: AgentPackage, group: AgentPackage[]): string | null {
  const others = group.filter((other) => other !== pkg);
  if (others.length === 0) return null;
  if (others.some((other) => other.version !== pkg.version)) {
    const where = others.map((other) => `with version ${other.version} in ${other.file}`).join(" and ");
    return `name clash: AGENT_NAME "${pkg.name}" is also declared ${where}`;
  }
  const first = group[0];
  if (first === pkg || first === undefined) return null;
  return `duplicate: AGENT_NAME "${pkg.name}" version ${pkg.version} is already declared in ${first.file}`;
}

function errorCode(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error ? String(error.code) : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

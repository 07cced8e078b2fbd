import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scanAgentsDirectory } from "../../src/lifecycle/discovery-scan.js";

/** A small valid package; each case overrides a field. */
function discovery(fields: Record<string, string | undefined> = {}): string {
  const all: Record<string, string | undefined> = {
    AGENT_NAME: "example",
    AGENT_VERSION: "1.0.0",
    AGENT_DESCRIPTION: "An example agent",
    DEFAULT_SUBSCRIBED_TOPICS: "logs.raw",
    DEFAULT_FINDINGS_TOPIC: "findings.example",
    ...fields,
  };
  return Object.entries(all)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${value}`)
    .join("\n");
}

let workspace: string;
let root: string;

async function put(relative: string, text: string): Promise<void> {
  const file = path.join(root, relative);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, text);
}

const env = (folder: string) => path.join(root, folder, ".env.discovery");

beforeAll(async () => {
  workspace = await mkdtemp(path.join(tmpdir(), "steward-scan-"));
  root = path.join(workspace, "agents");
  await put("alpha/.env.discovery", discovery({ AGENT_NAME: "alpha", AGENT_TAGS: "a,b" }));
  await put(
    "alpha/config.schema.json",
    '{"type":"object","properties":{"limit":{"type":"integer","default":5}}}',
  );
  await put("beta/.env.discovery", discovery({ AGENT_NAME: "beta", AGENT_TYPE: "scanner" }));
  await put("c-missing/.env.discovery", discovery({ AGENT_NAME: "c", DEFAULT_FINDINGS_TOPIC: undefined }));
  await put("d-bad-version/.env.discovery", discovery({ AGENT_NAME: "d", AGENT_VERSION: "1.x" }));
  await put(
    "e-bad-subject/.env.discovery",
    discovery({ AGENT_NAME: "e", DEFAULT_SUBSCRIBED_TOPICS: "logs..raw" }),
  );
  await put("f-clash-one/.env.discovery", discovery({ AGENT_NAME: "clash", AGENT_VERSION: "1.0.0" }));
  await put("g-clash-two/.env.discovery", discovery({ AGENT_NAME: "clash", AGENT_VERSION: "2.0.0" }));
  await put("h-dup-first/.env.discovery", discovery({ AGENT_NAME: "dup" }));
  await put("i-dup-second/.env.discovery", discovery({ AGENT_NAME: "dup" }));
  await put("j-no-discovery/README.md", "not a package");
  await put("k-nested/inner/.env.discovery", discovery({ AGENT_NAME: "nested" }));
  await put("l-bad-schema/.env.discovery", discovery({ AGENT_NAME: "l" }));
  await put("l-bad-schema/config.schema.json", '{"type":"array"}');
  await mkdir(path.join(root, "m-unreadable", ".env.discovery"), { recursive: true });
  await put(".hidden/.env.discovery", discovery({ AGENT_NAME: "hidden" }));
  await put("node_modules/.env.discovery", discovery({ AGENT_NAME: "dependency" }));
  await put("notes.txt", "a file, not a folder");
  // A package linked in from elsewhere counts like a folder; links to nothing or to a file are skipped.
  await mkdir(path.join(workspace, "checkout"));
  await writeFile(path.join(workspace, "checkout", ".env.discovery"), discovery({ AGENT_NAME: "linked" }));
  await symlink(path.join(workspace, "checkout"), path.join(root, "n-linked"));
  await symlink(path.join(workspace, "nowhere"), path.join(root, "o-dangling"));
  await symlink(path.join(root, "notes.txt"), path.join(root, "p-file-link"));
});

afterAll(async () => {
  await rm(workspace, { recursive: true, force: true });
});

describe("scanAgentsDirectory", () => {
  it("keeps exactly the valid packages, sorted by folder name", async () => {
    const result = await scanAgentsDirectory(root);
    expect(result.directory).toBe(root);
    expect(result.directoryMissing).toBe(false);
    expect(result.packages.map((pkg) => [path.basename(pkg.directory), pkg.name])).toEqual([
      ["alpha", "alpha"],
      ["beta", "beta"],
      ["h-dup-first", "dup"],
      ["n-linked", "linked"],
    ]);
    const [alpha, beta] = result.packages;
    expect(alpha).toMatchObject({
      file: env("alpha"),
      directory: path.join(root, "alpha"),
      tags: ["a", "b"],
      configDefaults: { limit: 5 },
    });
    expect(beta).toMatchObject({ type: "scanner", configSchema: null });
  });

  it("reports each refused package with its file and reason, in folder order", async () => {
    const { problems } = await scanAgentsDirectory(root);
    expect(problems).toEqual([
      { file: env("c-missing"), reason: "missing required field DEFAULT_FINDINGS_TOPIC" },
      { file: env("d-bad-version"), reason: 'AGENT_VERSION "1.x" is not a semantic version' },
      {
        file: env("e-bad-subject"),
        reason: 'DEFAULT_SUBSCRIBED_TOPICS: "logs..raw" is not a valid NATS subject',
      },
      {
        file: env("f-clash-one"),
        reason: `name clash: AGENT_NAME "clash" is also declared with version 2.0.0 in ${env("g-clash-two")}`,
      },
      {
        file: env("g-clash-two"),
        reason: `name clash: AGENT_NAME "clash" is also declared with version 1.0.0 in ${env("f-clash-one")}`,
      },
      {
        file: env("i-dup-second"),
        reason: `duplicate: AGENT_NAME "dup" version 1.0.0 is already declared in ${env("h-dup-first")}`,
      },
      {
        file: path.join(root, "l-bad-schema", "config.schema.json"),
        reason: 'config.schema.json must describe an object (its "type" is "array")',
      },
      { file: env("m-unreadable"), reason: expect.stringMatching(/^cannot read \.env\.discovery: EISDIR/) },
    ]);
  });

  it("resolves a relative directory", async () => {
    const relative = path.relative(process.cwd(), root);
    const result = await scanAgentsDirectory(relative);
    expect(result.directory).toBe(root);
    expect(result.packages).toHaveLength(4);
  });

  it("returns nothing and directoryMissing for a directory that does not exist", async () => {
    const missing = path.join(workspace, "absent");
    expect(await scanAgentsDirectory(missing)).toEqual({
      directory: missing,
      directoryMissing: true,
      packages: [],
      problems: [],
    });
  });

  it("reports a path that is not a directory instead of throwing", async () => {
    const file = path.join(root, "notes.txt");
    const result = await scanAgentsDirectory(file);
    expect(result).toMatchObject({ directoryMissing: false, packages: [] });
    expect(result.problems).toEqual([
      { file, reason: expect.stringMatching(/^cannot read the agents directory: ENOTDIR/) },
    ]);
  });

  it("refuses every package of a name declared with more than one version, copies included", async () => {
    const three = path.join(workspace, "three");
    const file = (folder: string) => path.join(three, folder, ".env.discovery");
    for (const [folder, version] of [
      ["a", "1.0.0"],
      ["b", "1.0.0"],
      ["c", "2.0.0"],
    ] as const) {
      await mkdir(path.join(three, folder), { recursive: true });
      await writeFile(file(folder), discovery({ AGENT_NAME: "x", AGENT_VERSION: version }));
    }
    const result = await scanAgentsDirectory(three);
    expect(result.packages).toEqual([]);
    expect(result.problems.map((problem) => problem.file)).toEqual([file("a"), file("b"), file("c")]);
    expect(result.problems[2]?.reason).toBe(
      `name clash: AGENT_NAME "x" is also declared with version 1.0.0 in ${file("a")} and with version 1.0.0 in ${file("b")}`,
    );
  });
});

import { spawn } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join, posix } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";

/**
 * deploy/Dockerfile, checked by reading it: no Docker engine runs here. Paths in the
 * image are worked out from the Dockerfile's WORKDIR and COPY lines, and what the server
 * expects at run time from the compiler's own output mapping and the source's relative
 * URLs, so a moved file or a renamed output fails here rather than in a cluster.
 */

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DOCKERFILE = join(ROOT, "deploy/Dockerfile");

interface Instruction {
  keyword: string;
  args: string;
}

interface Stage {
  name: string;
  image: string;
  instructions: Instruction[];
}

/** Instructions of a Dockerfile: continuation lines joined, comments left out. */
function instructions(text: string): Instruction[] {
  const result: Instruction[] = [];
  let pending = "";
  for (const raw of text.split("\n")) {
    const line = raw.trimEnd();
    if (/^\s*#/.test(line)) continue;
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const whole = (pending + line).trim();
    pending = "";
    if (whole === "") continue;
    const match = /^(\w+)\s+([\s\S]*)$/.exec(whole);
    if (!match) throw new Error(`cannot read Dockerfile line: ${whole}`);
    result.push({ keyword: (match[1] as string).toUpperCase(), args: (match[2] as string).trim() });
  }
  return result;
}

/** Build stages, with the global ARG defaults substituted into each FROM. */
function stages(text: string): Stage[] {
  const args: Record<string, string> = {};
  const result: Stage[] = [];
  for (const instruction of instructions(text)) {
    if (instruction.keyword === "FROM") {
      const [image = "", as, name] = instruction.args.split(/\s+/);
      const resolved = image.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => args[a ?? b] ?? "");
      result.push({
        name: as?.toUpperCase() === "AS" && name ? name : String(result.length),
        image: resolved,
        instructions: [],
      });
    } else if (result.length === 0) {
      if (instruction.keyword !== "ARG") throw new Error(`${instruction.keyword} before the first FROM`);
      const [key = "", value = ""] = instruction.args.split("=", 2);
      args[key] = value;
    } else {
      result.at(-1)?.instructions.push(instruction);
    }
  }
  return result;
}

/** An exec-form (JSON array) argument list. */
function execForm(args: string): string[] {
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === "string"))
    throw new Error(`not an exec-form array: ${args}`);
  return parsed;
}

interface Copy {
  from?: string;
  sources: string[];
  /** Absolute destination in the image, WORKDIR applied. */
  destination: string;
  destinationIsDirectory: boolean;
}

/** COPY instructions of a stage with their destinations resolved against the WORKDIR in force. */
function copies(stage: Stage): Copy[] {
  let workdir = "/";
  const result: Copy[] = [];
  for (const { keyword, args } of stage.instructions) {
    if (keyword === "WORKDIR") workdir = posix.resolve(workdir, args);
    if (keyword !== "COPY") continue;
    const words = args.split(/\s+/);
    const flags = words.filter((word) => word.startsWith("--"));
    const paths = words.filter((word) => !word.startsWith("--"));
    const destination = paths.pop() as string;
    const from = flags.find((flag) => flag.startsWith("--from="))?.slice("--from=".length);
    result.push({
      ...(from ? { from } : {}),
      sources: paths,
      destination: posix.resolve(workdir, destination),
      destinationIsDirectory: destination.endsWith("/") || destination === "." || paths.length > 1,
    });
  }
  return result;
}

function workdirOf(stage: Stage): string {
  return stage.instructions
    .filter((instruction) => instruction.keyword === "WORKDIR")
    .reduce((dir, instruction) => posix.resolve(dir, instruction.args), "/");
}

function last(stage: Stage, keyword: string): string | undefined {
  return stage.instructions.filter((instruction) => instruction.keyword === keyword).at(-1)?.args;
}

function runs(stage: Stage): string[] {
  return stage.instructions
    .filter((instruction) => instruction.keyword === "RUN")
    .map((instruction) => instruction.args);
}

const text = readFileSync(DOCKERFILE, "utf8");
const all = stages(text);
const runtime = all.at(-1) as Stage;
const runtimeWorkdir = workdirOf(runtime);
const packageJson = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  scripts: Record<string, string>;
};

/** The TypeScript build the `build` script runs, as the compiler itself reads it. */
function buildConfig(): ts.ParsedCommandLine {
  const project = /tsc -p (\S+)/.exec(packageJson.scripts.build ?? "")?.[1];
  if (!project) throw new Error("the build script does not run tsc -p <project>");
  const path = join(ROOT, project);
  const { config, error } = ts.readConfigFile(path, ts.sys.readFile);
  if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, "\n"));
  return ts.parseJsonConfigFileContent(config, ts.sys, ROOT, undefined, path);
}

/** The repository-relative file tsc writes for a source file (src/main.ts → dist/main.js). */
function compiledOutput(source: string): string {
  const parsed = buildConfig();
  const output = ts
    .getOutputFileNames(parsed, join(ROOT, source), false)
    .find((file) => file.endsWith(".js"));
  if (!output) throw new Error(`${source} is not compiled by the build`);
  return posix.relative(ROOT.replaceAll("\\", "/"), output.replaceAll("\\", "/"));
}

/** The build's output directory, repository-relative ("dist"). */
function outDir(): string {
  const dir = buildConfig().options.outDir;
  if (!dir) throw new Error("the build has no outDir");
  return posix.relative(ROOT.replaceAll("\\", "/"), dir.replaceAll("\\", "/"));
}

/**
 * Where a repository file (source or built, repository-relative) ends up in the runtime
 * image, following its COPY lines: from the build context, or from the build stage,
 * whose WORKDIR is the repository's root. Undefined when nothing copies it.
 */
function imagePath(file: string): string | undefined {
  const build = all.find((stage) => stage !== runtime);
  const buildWorkdir = build ? workdirOf(build) : "/";
  const isDirectory = (relative: string) =>
    relative === outDir() ||
    relative === "node_modules" ||
    (existsSync(join(ROOT, relative)) && statSync(join(ROOT, relative)).isDirectory());
  let found: string | undefined;
  for (const copy of copies(runtime)) {
    for (const source of copy.sources) {
      const relative = copy.from
        ? posix.relative(buildWorkdir, posix.resolve("/", source))
        : posix.normalize(source).replace(/\/$/, "");
      if (relative.startsWith("..")) continue;
      if (file === relative && !isDirectory(relative)) {
        found = copy.destinationIsDirectory
          ? posix.join(copy.destination, posix.basename(relative))
          : copy.destination;
      } else if (isDirectory(relative) && file.startsWith(`${relative}/`)) {
        found = posix.join(copy.destination, file.slice(relative.length + 1));
      }
    }
  }
  return found;
}

/** The relative URL a source file resolves against its own location (`new URL("../x", import.meta.url)`). */
function relativeUrlIn(source: string): string {
  const match = /new URL\("([^"]+)", import\.meta\.url\)/.exec(readFileSync(join(ROOT, source), "utf8"));
  if (!match) throw new Error(`${source} resolves no path relative to itself`);
  return match[1] as string;
}

describe("deploy/Dockerfile: stages", () => {
  it("builds in a stage of its own and runs on a slim Node 20 image", () => {
    expect(all.length).toBeGreaterThanOrEqual(2);
    expect(runtime.image).toMatch(
      /^node:20(\.\d+)*-(bookworm-|bullseye-|trixie-)?slim(@sha256:[0-9a-f]{64})?$/,
    );
    const build = all.find((stage) => stage.name === "build");
    expect(build, "a stage named build").toBeDefined();
    expect(build?.image).toMatch(/^node:20/);
  });

  it("installs dependencies, then runs `npm run build`, whose tsc compiles src/ and whose build:web writes dist/web", () => {
    const build = all.find((stage) => stage.name === "build") as Stage;
    const commands = runs(build);
    const install = commands.findIndex((command) => /\bnpm (ci|install)\b/.test(command));
    const buildRun = commands.findIndex((command) => /\bnpm run build\b/.test(command));
    expect(install).toBeGreaterThanOrEqual(0);
    expect(buildRun).toBeGreaterThan(install);
    expect(packageJson.scripts.build).toMatch(/tsc -p tsconfig\.build\.json/);
    expect(packageJson.scripts.build).toMatch(/npm run build:web/);
    // scripts/build-web.mjs writes into <repo>/dist/web, inside the directory the runtime copies.
    expect(readFileSync(join(ROOT, "scripts/build-web.mjs"), "utf8")).toContain('"../dist/web"');
    // Everything the build reads is copied into the build stage from the context.
    const context = copies(build).flatMap((copy) => (copy.from ? [] : copy.sources));
    for (const needed of ["package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json"])
      expect(context).toContain(needed);
    for (const needed of ["src/", "web/", "scripts/"]) expect(context).toContain(needed);
  });

  it("keeps only production dependencies in the runtime image", () => {
    const build = all.find((stage) => stage.name === "build") as Stage;
    const pruned = runs(build).some((command) => /npm prune --omit=dev/.test(command));
    const installedProductionOnly = runs(runtime).some((command) =>
      /npm (ci|install) [^&]*--omit=dev/.test(command),
    );
    expect(pruned || installedProductionOnly).toBe(true);
    // No compiler toolchain or sources in the runtime stage.
    expect(imagePath("src/main.ts")).toBeUndefined();
    expect(imagePath("web/index.html")).toBeUndefined();
  });
});

describe("deploy/Dockerfile: the runtime image", () => {
  it("runs as a numeric, non-root user (Kubernetes' runAsNonRoot can verify only a number)", () => {
    const user = last(runtime, "USER");
    expect(user).toBeDefined();
    const [uid = "", gid] = (user as string).split(":");
    expect(uid).toMatch(/^\d+$/);
    expect(Number(uid)).toBeGreaterThan(0);
    if (gid !== undefined) expect(Number(gid)).toBeGreaterThan(0);
    // USER comes after every RUN, so nothing runs as root once it is set... and the image ends as that user.
    const userIndex = runtime.instructions.findIndex((instruction) => instruction.keyword === "USER");
    const lastRun = runtime.instructions.map((instruction) => instruction.keyword).lastIndexOf("RUN");
    expect(userIndex).toBeGreaterThan(lastRun);
  });

  it("copies the build output (dist/, dist/web included) from the build stage", () => {
    const fromBuild = copies(runtime).filter((copy) => copy.from === "build");
    expect(fromBuild.length).toBeGreaterThan(0);
    expect(imagePath("dist/main.js")).toBe(posix.join(runtimeWorkdir, "dist/main.js"));
    expect(imagePath("dist/web/index.html")).toBe(posix.join(runtimeWorkdir, "dist/web/index.html"));
    expect(
      copies(runtime).find((copy) => copy.sources.some((source) => /\/dist\/?$/.test(source)))?.from,
    ).toBe("build");
  });

  it("starts the server from the file tsc writes for src/main.ts", () => {
    expect(outDir()).toBe("dist");
    const main = compiledOutput("src/main.ts");
    expect(main).toBe("dist/main.js");
    const entrypoint = last(runtime, "ENTRYPOINT");
    const command = [...(entrypoint ? execForm(entrypoint) : []), ...execForm(last(runtime, "CMD") ?? "[]")];
    const node = command.indexOf("node");
    expect(node, `node in ${command.join(" ")}`).toBeGreaterThanOrEqual(0);
    const script = command[node + 1] as string;
    expect(posix.resolve(runtimeWorkdir, script)).toBe(imagePath(main));
    expect(command[node + 2]).toBe("serve");
    expect(readFileSync(join(ROOT, "src/main.ts"), "utf8")).toMatch(/command === "serve"/);
    // An init process in front of node must be installed in the image.
    if (entrypoint) {
      const init = execForm(entrypoint)[0] as string;
      expect(runs(runtime).join("\n")).toContain(posix.basename(init));
    }
  });

  it("puts package.json, migrations/ and dist/web where the compiled server looks for them", () => {
    // src/version.ts reads ../package.json, src/db/migrate.ts ../../migrations/, src/http/dashboard.ts ../../dist/web.
    const expectations: Array<[string, string]> = [
      ["src/version.ts", "package.json"],
      ["src/db/migrate.ts", "migrations/0001_foundation.sql"],
      ["src/http/dashboard.ts", "dist/web/index.html"],
    ];
    for (const [source, target] of expectations) {
      const compiled = imagePath(compiledOutput(source));
      expect(compiled, `${source} in the image`).toBeDefined();
      const lookedFor = posix.resolve(posix.dirname(compiled as string), relativeUrlIn(source));
      const copied = imagePath(target);
      expect(copied, `${target} in the image`).toBeDefined();
      expect(posix.relative(lookedFor, copied as string).startsWith(".."), `${source} finds ${target}`).toBe(
        false,
      );
    }
  });

  it("carries scripts/run-migrations.sh beside migrations/, with bash and psql to run it", () => {
    const script = imagePath("scripts/run-migrations.sh");
    expect(script).toBe(posix.join(runtimeWorkdir, "scripts/run-migrations.sh"));
    // The script's default migrations directory is ../migrations from its own.
    expect(readFileSync(join(ROOT, "scripts/run-migrations.sh"), "utf8")).toMatch(
      /\$\(dirname "\$\{BASH_SOURCE\[0\]\}"\)\/\.\.\/migrations/,
    );
    expect(posix.resolve(posix.dirname(script as string), "../migrations/0001_foundation.sql")).toBe(
      imagePath("migrations/0001_foundation.sql"),
    );
    expect(runs(runtime).join("\n")).toMatch(/apt-get install[^\n]*postgresql-client/);
    // Debian's slim images ship bash; an Alpine one would not.
    expect(runtime.image).not.toMatch(/alpine/);
  });

  /** The runtime stage's ENV instructions, as one line of NAME=value pairs. */
  const runtimeEnv = () =>
    runtime.instructions
      .filter((instruction) => instruction.keyword === "ENV")
      .map((instruction) => instruction.args)
      .join(" ");

  it("exposes the ports Steward listens on by default: the API's, then the worker's", () => {
    const { port, workerPort } = loadConfig({});
    expect(last(runtime, "EXPOSE")).toBe(`${port} ${workerPort}`);
    expect(runtimeEnv()).toMatch(new RegExp(`\\bPORT=${port}\\b`));
  });

  it("tunes glibc's allocator as `npm start` does by default", () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    // NAME=${NAME:-default}: the environment's value, else the default.
    const started = [...manifest.scripts.start.matchAll(/\b(MALLOC_\w+)=\$\{\1:-([^}]+)\}/g)].map(
      ([, name, value]: string[]) => `${name}=${value}`,
    );
    expect(started).toEqual(["MALLOC_ARENA_MAX=2", "MALLOC_MMAP_THRESHOLD_=131072"]);
    expect(runtimeEnv().match(/\bMALLOC_\w+=\S+/g)).toEqual(started);
  });
});

describe("deploy/Dockerfile: HEALTHCHECK", () => {
  const healthcheck = last(runtime, "HEALTHCHECK") ?? "";
  const cmd = /\bCMD\s+(\[.*\])\s*$/.exec(healthcheck)?.[1];
  const servers: Server[] = [];

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  });

  /**
   * Runs the HEALTHCHECK's command with PORT set, and STEWARD_WORKER_PORT (a port nothing
   * listens on unless given); resolves with its exit code.
   */
  async function runCheck(port: number | undefined, workerPort?: number): Promise<number | null> {
    const [program, ...args] = execForm(cmd as string);
    expect(program).toBe("node");
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      STEWARD_WORKER_PORT: String(workerPort ?? (await closedPort())),
    };
    if (port === undefined) delete env.PORT;
    else env.PORT = String(port);
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, args, { env, stdio: "ignore" });
      child.on("error", reject);
      child.on("exit", (code) => resolve(code));
    });
  }

  async function serve(status: number): Promise<{ port: number; paths: string[] }> {
    const paths: string[] = [];
    const server = createServer((request, response) => {
      paths.push(request.url ?? "");
      response.writeHead(status, { "content-type": "application/json" }).end('{"status":"ok"}');
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return { port: (server.address() as AddressInfo).port, paths };
  }

  it("is an exec-form node command (no curl in a slim image) with a timeout and a start period", () => {
    expect(cmd).toBeDefined();
    expect(healthcheck).toMatch(/--timeout=\d+s/);
    expect(healthcheck).toMatch(/--start-period=\d+s/);
    // Without PORT and STEWARD_WORKER_PORT it asks Steward's default ports.
    expect(cmd).toContain(`|| ${loadConfig({}).port}`);
    expect(cmd).toContain(`|| ${loadConfig({}).workerPort}`);
  });

  it("passes when /health on $PORT answers 200, and asks nothing else", async () => {
    const { port, paths } = await serve(200);
    expect(await runCheck(port)).toBe(0);
    expect(paths).toEqual(["/health"]);
  });

  it("passes in a worker's container: nothing on $PORT, /health on $STEWARD_WORKER_PORT answers 200", async () => {
    const worker = await serve(200);
    expect(await runCheck(await closedPort(), worker.port)).toBe(0);
    expect(worker.paths).toEqual(["/health"]);
  });

  it("fails when /health answers an error or nothing listens", async () => {
    const { port } = await serve(503);
    expect(await runCheck(port)).toBe(1);
    expect(await runCheck(await closedPort())).toBe(1);
  });

  /** A port that was free a moment ago: nothing listens on it. */
  async function closedPort(): Promise<number> {
    const closed = await serve(200);
    await new Promise((resolve) => servers.pop()?.close(resolve));
    return closed.port;
  }
});

describe(".dockerignore", () => {
  const patterns = readFileSync(join(ROOT, ".dockerignore"), "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));

  it("is an allow-list: everything out, then only what the Dockerfile copies back in", () => {
    expect(patterns[0]).toBe("*");
    const allowed = patterns.slice(1).map((pattern) => {
      expect(pattern.startsWith("!"), pattern).toBe(true);
      return pattern.slice(1).replace(/\/$/, "");
    });
    const fromContext = all.flatMap((stage) =>
      copies(stage).flatMap((copy) =>
        copy.from ? [] : copy.sources.map((source) => source.replace(/\/$/, "")),
      ),
    );
    for (const source of fromContext) {
      expect(
        allowed.some((entry) => source === entry || source.startsWith(`${entry}/`)),
        `${source} is in the build context`,
      ).toBe(true);
      expect(existsSync(join(ROOT, source)), `${source} exists`).toBe(true);
    }
    for (const secretOrBulky of [".steward", ".env", "node_modules", "dist", ".git", "test", "bench"])
      expect(allowed.some((entry) => secretOrBulky === entry || secretOrBulky.startsWith(`${entry}/`))).toBe(
        false,
      );
  });
});

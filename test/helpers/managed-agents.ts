import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, expect } from "vitest";
import { startTestSteward, type TestSteward } from "./steward.js";

/**
 * Fixtures of the managed-agent route tests: an agents directory of packages (two valid,
 * three broken), a Steward per describe block scanning it at start, and registration helpers.
 */

/** The managed-agent API. */
export const AGENTS = "/api/v1/agents";
/** A managed agent's id: `{type}-{uuid}`. */
export const ID_PATTERN = /^[a-z][a-z0-9-]*-[0-9a-f-]{36}$/;

/** The config schema of the log-sentinel package. */
export const SENTINEL_SCHEMA = {
  type: "object",
  properties: {
    threshold: { type: "integer", minimum: 1, default: 10 },
    mode: { type: "string", enum: ["fast", "thorough"], default: "fast" },
    region: { type: "string" },
  },
  additionalProperties: false,
};

/** Package folders of the agents directory: two valid, three broken (one field each). */
const PACKAGES: Record<string, { env: Record<string, string>; schema?: object }> = {
  "log-sentinel": {
    env: {
      AGENT_NAME: "log-sentinel",
      AGENT_VERSION: "1.2.0",
      AGENT_DESCRIPTION: "Watches logs for trouble",
      DEFAULT_SUBSCRIBED_TOPICS: "logs.>,audit.*",
      DEFAULT_FINDINGS_TOPIC: "findings.logs",
      AGENT_TYPE: "sentinel",
      AGENT_TAGS: "logs,security",
      AGENT_RESOURCE_MEMORY: "256Mi",
    },
    schema: SENTINEL_SCHEMA,
  },
  "cost-watcher": {
    env: {
      AGENT_NAME: "cost-watcher",
      AGENT_VERSION: "0.3.1",
      AGENT_DESCRIPTION: "Watches spending",
      DEFAULT_SUBSCRIBED_TOPICS: "billing.events",
      DEFAULT_FINDINGS_TOPIC: "findings.cost",
    },
  },
  "missing-field": {
    env: {
      AGENT_NAME: "missing-findings",
      AGENT_VERSION: "1.0.0",
      AGENT_DESCRIPTION: "Has no findings topic",
      DEFAULT_SUBSCRIBED_TOPICS: "x.y",
    },
  },
  "bad-version": {
    env: {
      AGENT_NAME: "bad-version",
      AGENT_VERSION: "1.2",
      AGENT_DESCRIPTION: "Version is not semver",
      DEFAULT_SUBSCRIBED_TOPICS: "x.y",
      DEFAULT_FINDINGS_TOPIC: "findings.x",
    },
  },
  "bad-subject": {
    env: {
      AGENT_NAME: "bad-subject",
      AGENT_VERSION: "1.0.0",
      AGENT_DESCRIPTION: "Subscribes to a broken subject",
      DEFAULT_SUBSCRIBED_TOPICS: "logs..x",
      DEFAULT_FINDINGS_TOPIC: "findings.x",
    },
  },
};
/** The broken packages: folder to the AGENT_NAME it declares. */
export const BROKEN = {
  "missing-field": "missing-findings",
  "bad-version": "bad-version",
  "bad-subject": "bad-subject",
};

/** One test file's agents directory, and the Stewards its describe blocks run over it. */
export interface AgentsDir {
  /** The directory's path, once the file's beforeAll has written it. */
  readonly path: string;
  /** A Steward for one describe block, scanning this directory at start (no watcher). */
  useSteward(env?: () => Record<string, string>): Api;
}

/** Writes the packages into a fresh temporary agents directory and answers its path. */
async function writeAgentsDir(): Promise<string> {
  const agentsDir = await mkdtemp(path.join(tmpdir(), "steward-agents-"));
  for (const [folder, pkg] of Object.entries(PACKAGES)) {
    const dir = path.join(agentsDir, folder);
    await mkdir(dir);
    const envText = Object.entries(pkg.env)
      .map(([key, value]) => `${key}=${value}`)
      .join("\n");
    await writeFile(path.join(dir, ".env.discovery"), `${envText}\n`);
    if (pkg.schema) await writeFile(path.join(dir, "config.schema.json"), JSON.stringify(pkg.schema));
  }
  return agentsDir;
}

/**
 * The test file's agents directory: call at the top level of the file, so it is written in
 * the file's beforeAll and removed in its afterAll.
 */
export function useAgentsDir(): AgentsDir {
  let agentsDir = "";
  beforeAll(async () => {
    agentsDir = await writeAgentsDir();
  });
  afterAll(async () => {
    if (agentsDir) await rm(agentsDir, { recursive: true, force: true });
  });
  return {
    get path() {
      return agentsDir;
    },
    useSteward: (env = () => ({})) => useSteward(() => agentsDir, env),
  };
}

/** A Steward for one describe block, scanning the agents directory at start (no watcher). */
function useSteward(agentsDir: () => string, env: () => Record<string, string>) {
  const holder = {} as { t: TestSteward };
  beforeAll(async () => {
    holder.t = await startTestSteward("postgres", {
      STEWARD_AGENTS_DIR: agentsDir(),
      STEWARD_AGENTS_WATCH: "false",
      ...env(),
    });
  });
  afterAll(async () => {
    await holder.t?.close();
  });
  /** Key undefined: the bootstrap admin of `default`; null: no credential. */
  type Key = string | null | undefined;
  const call = (method: "GET" | "POST" | "PUT" | "DELETE", url: string, payload?: object, key?: Key) =>
    holder.t.request({ method, url, key, ...(payload === undefined ? {} : { payload }) });
  return {
    get t() {
      return holder.t;
    },
    get: (url: string, key?: Key) => call("GET", url, undefined, key),
    post: (url: string, payload?: object, key?: Key) => call("POST", url, payload, key),
    put: (url: string, payload?: object, key?: Key) => call("PUT", url, payload, key),
    del: (url: string, key?: Key) => call("DELETE", url, undefined, key),
  };
}

/** The API of one describe block's Steward. */
export type Api = ReturnType<typeof useSteward>;

/** The fields a validation error names. */
export const fieldsOf = (response: LightMyRequestResponse): string[] =>
  (response.json().error?.details?.errors ?? []).map((error: { field: string }) => error.field);

/** A valid agent definition with a unique name, as a registration body. */
export function definition(overrides: Record<string, unknown> = {}) {
  return {
    name: `hand-${randomBytes(4).toString("hex")}`,
    version: "1.0.0",
    description: "Registered by hand",
    subscribed_topics: ["jobs.>"],
    findings_topic: "findings.jobs",
    ...overrides,
  };
}

/** Registers an agent defined in the body; answers its id and token. */
export async function registerByHand(api: Api, overrides: Record<string, unknown> = {}, key?: string) {
  const response = await api.post(AGENTS, definition(overrides), key);
  expect(response.statusCode, response.body).toBe(201);
  const body = response.json();
  return { id: body.agent.id as string, token: body.credentials.token as string, agent: body.agent };
}

/** The id of a discovered agent of the caller's organization, by name. */
export async function discoveredId(api: Api, name: string, key?: string): Promise<string> {
  const response = await api.get(`${AGENTS}?name=${name}`, key);
  expect(response.statusCode, response.body).toBe(200);
  const [agent] = response.json().items;
  expect(agent?.state).toBe("discovered");
  return agent.id as string;
}

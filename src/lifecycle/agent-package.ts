import path from "node:path";
import { parseEnv } from "node:util";
import semver from "semver";
import { Compile } from "typebox/compile";

/** A managed agent package, as declared by its folder's `.env.discovery` (and `config.schema.json`). */
export interface AgentPackage {
  name: string;
  version: string;
  description: string;
  type: string;
  tags: string[];
  subscribedTopics: string[];
  findingsTopic: string;
  command: string | null;
  heartbeatIntervalS: number;
  resourceHints: Record<string, string>;
  configSchema: Record<string, unknown> | null;
  configDefaults: Record<string, unknown>;
  /** Absolute path of the package folder, and of its .env.discovery file. */
  directory: string;
  file: string;
}

/** Why a package was refused: the offending file (absolute) and a sentence naming the field. */
export interface PackageProblem {
  file: string;
  reason: string;
}

export const AGENT_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const AGENT_TYPE_PATTERN = /^[a-z][a-z0-9-]{0,31}$/;

export const DISCOVERY_FILE = ".env.discovery";
export const CONFIG_SCHEMA_FILE = "config.schema.json";

const REQUIRED_FIELDS = [
  "AGENT_NAME",
  "AGENT_VERSION",
  "AGENT_DESCRIPTION",
  "DEFAULT_SUBSCRIBED_TOPICS",
  "DEFAULT_FINDINGS_TOPIC",
] as const;
const RESOURCE_PREFIX = "AGENT_RESOURCE_";
const DEFAULT_TYPE = "agent";
const DEFAULT_HEARTBEAT_S = 30;
const MAX_HEARTBEAT_S = 3600;
const MAX_TAG_LENGTH = 64;
const MAX_SUBJECT_LENGTH = 255;
// Unicode whitespace and control characters would split or corrupt the NATS protocol line.
const SUBJECT_FORBIDDEN = /[\s\p{Cc}]/u;

type Env = Record<string, string | undefined>;
type EnvFields = Omit<AgentPackage, "configSchema" | "configDefaults" | "directory" | "file">;
type Outcome<T> = { ok: true; value: T } | { ok: false; reason: string };

/** True when `subject` may be subscribed to: non-empty tokens, `*` as a whole token, `>` as the whole last one. */
export function isSubscribableSubject(subject: string): boolean {
  if (subject.length === 0 || subject.length > MAX_SUBJECT_LENGTH || SUBJECT_FORBIDDEN.test(subject)) {
    return false;
  }
  const tokens = subject.split(".");
  return tokens.every((token, index) => {
    if (token === "*") return true;
    if (token === ">") return index === tokens.length - 1;
    return token.length > 0 && !token.includes("*") && !token.includes(">");
  });
}

/** True when `subject` may be published to: a subscribable subject without any wildcard. */
export function isPublishableSubject(subject: string): boolean {
  return isSubscribableSubject(subject) && !/[*>]/.test(subject);
}

/** Validates one package's .env.discovery text (and config.schema.json text, if the package has one). */
export function parseAgentPackage(input: {
  directory: string;
  envText: string;
  schemaText?: string;
}): { ok: true; package: AgentPackage } | { ok: false; problem: PackageProblem } {
  const directory = path.resolve(input.directory);
  const file = path.join(directory, DISCOVERY_FILE);
  const fields = parseEnvFields(parseEnv(input.envText));
  if (!fields.ok) return { ok: false, problem: { file, reason: fields.reason } };

  let configSchema: Record<string, unknown> | null = null;
  let configDefaults: Record<string, unknown> = {};
  if (input.schemaText !== undefined) {
    const schema = parseConfigSchema(input.schemaText);
    if (!schema.ok) {
      return {
        ok: false,
        problem: { file: path.join(directory, CONFIG_SCHEMA_FILE), reason: schema.reason },
      };
    }
    configSchema = schema.value;
    configDefaults = defaultsOf(schema.value);
  }
  return { ok: true, package: { ...fields.value, configSchema, configDefaults, directory, file } };
}

/** A field's trimmed value; `undefined` when the key is absent (own keys only, so "constructor" is not a field). */
function field(env: Env, key: string): string | undefined {
  return Object.hasOwn(env, key) ? (env[key] ?? "").trim() : undefined;
}

/** Checks every field and reports all problems of the file at once, so one edit can fix them. */
function parseEnvFields(env: Env): Outcome<EnvFields> {
  const errors: string[] = [];
  const missing = REQUIRED_FIELDS.filter((key) => !field(env, key));
  if (missing.length === 1) errors.push(`missing required field ${missing[0]}`);
  if (missing.length > 1) errors.push(`missing required fields ${missing.join(", ")}`);

  const name = field(env, "AGENT_NAME") ?? "";
  if (name && !AGENT_NAME_PATTERN.test(name)) {
    errors.push(
      `AGENT_NAME "${name}" is not a valid name (lower-case letters, digits, "_" and "-", starting with a letter or digit, at most 63 characters)`,
    );
  }
  const version = field(env, "AGENT_VERSION") ?? "";
  if (version) errors.push(...versionErrors(version));
  const subscribedTopics = collect(subscribedTopicsOf(field(env, "DEFAULT_SUBSCRIBED_TOPICS")), errors, []);
  const findingsTopic = collect(findingsTopicOf(field(env, "DEFAULT_FINDINGS_TOPIC")), errors, "");
  const type = collect(typeOf(field(env, "AGENT_TYPE")), errors, DEFAULT_TYPE);
  const tags = collect(tagsOf(field(env, "AGENT_TAGS")), errors, []);
  const command = collect(commandOf(field(env, "AGENT_COMMAND")), errors, null);
  const heartbeatIntervalS = collect(heartbeatOf(field(env, "AGENT_HEARTBEAT_INTERVAL")), errors, 0);
  const resourceHints = collect(resourceHintsOf(env), errors, {});

  if (errors.length > 0) return { ok: false, reason: errors.join("; ") };
  const description = field(env, "AGENT_DESCRIPTION") ?? "";
  return {
    ok: true,
    value: {
      name,
      version,
      description,
      type,
      tags,
      subscribedTopics,
      findingsTopic,
      command,
      heartbeatIntervalS,
      resourceHints,
    },
  };
}

/** The outcome's value, or `fallback` after recording its reason. */
function collect<T>(outcome: Outcome<T>, errors: string[], fallback: T): T {
  if (outcome.ok) return outcome.value;
  errors.push(outcome.reason);
  return fallback;
}

/** Requires the normalized form, because the version is compared as a string to detect clashes. */
function versionErrors(version: string): string[] {
  const normalized = semver.valid(version);
  if (normalized === null) return [`AGENT_VERSION "${version}" is not a semantic version`];
  if (normalized !== version) {
    return [`AGENT_VERSION "${version}" is not a semantic version (write it as "${normalized}")`];
  }
  return [];
}

/** Comma-separated list, trimmed, empty entries and repeats dropped. */
function listOf(value: string): string[] {
  return [
    ...new Set(
      value
        .split(",")
        .map((entry) => entry.trim())
        .filter((entry) => entry.length > 0),
    ),
  ];
}

function subscribedTopicsOf(value: string | undefined): Outcome<string[]> {
  if (!value) return { ok: true, value: [] }; // reported as missing
  const topics = listOf(value);
  if (topics.length === 0) return { ok: false, reason: "DEFAULT_SUBSCRIBED_TOPICS lists no subject" };
  const invalid = topics.filter((topic) => !isSubscribableSubject(topic));
  if (invalid.length > 0) {
    return {
      ok: false,
      reason: invalid
        .map((topic) => `DEFAULT_SUBSCRIBED_TOPICS: "${topic}" is not a valid NATS subject`)
        .join("; "),
    };
  }
  return { ok: true, value: topics };
}

function findingsTopicOf(value: string | undefined): Outcome<string> {
  if (!value) return { ok: true, value: "" }; // reported as missing
  if (isPublishableSubject(value)) return { ok: true, value };
  const hint = isSubscribableSubject(value) ? ' to publish to (wildcards "*" and ">" are not allowed)' : "";
  return { ok: false, reason: `DEFAULT_FINDINGS_TOPIC: "${value}" is not a valid NATS subject${hint}` };
}

function typeOf(value: string | undefined): Outcome<string> {
  if (value === undefined) return { ok: true, value: DEFAULT_TYPE };
  if (AGENT_TYPE_PATTERN.test(value)) return { ok: true, value };
  return {
    ok: false,
    reason: `AGENT_TYPE "${value}" is not a valid type (lower-case letters, digits and "-", starting with a letter, at most 32 characters)`,
  };
}

function tagsOf(value: string | undefined): Outcome<string[]> {
  const tags = listOf(value ?? "");
  const tooLong = tags.find((tag) => tag.length > MAX_TAG_LENGTH);
  if (tooLong !== undefined) {
    return { ok: false, reason: `AGENT_TAGS: tag "${tooLong}" is longer than ${MAX_TAG_LENGTH} characters` };
  }
  return { ok: true, value: tags };
}

function commandOf(value: string | undefined): Outcome<string | null> {
  if (value === undefined) return { ok: true, value: null };
  if (value === "") return { ok: false, reason: "AGENT_COMMAND is empty" };
  return { ok: true, value };
}

function heartbeatOf(value: string | undefined): Outcome<number> {
  if (value === undefined) return { ok: true, value: DEFAULT_HEARTBEAT_S };
  const seconds = /^\d{1,5}$/.test(value) ? Number(value) : Number.NaN;
  if (seconds >= 1 && seconds <= MAX_HEARTBEAT_S) return { ok: true, value: seconds };
  return {
    ok: false,
    reason: `AGENT_HEARTBEAT_INTERVAL "${value}" is not a whole number of seconds between 1 and ${MAX_HEARTBEAT_S}`,
  };
}

/** `AGENT_RESOURCE_<NAME>=value` entries keyed by the lower-cased name. */
function resourceHintsOf(env: Env): Outcome<Record<string, string>> {
  const hints = new Map<string, { key: string; value: string }>();
  for (const key of Object.keys(env)) {
    if (!key.startsWith(RESOURCE_PREFIX) || key.length === RESOURCE_PREFIX.length) continue;
    const name = key.slice(RESOURCE_PREFIX.length).toLowerCase();
    const value = field(env, key) ?? "";
    if (value === "") return { ok: false, reason: `${key} is empty` };
    const earlier = hints.get(name);
    if (earlier) return { ok: false, reason: `${earlier.key} and ${key} both set resource hint "${name}"` };
    hints.set(name, { key, value });
  }
  // fromEntries defines own properties, so a hint named "__proto__" cannot replace the prototype.
  return { ok: true, value: Object.fromEntries([...hints].map(([name, hint]) => [name, hint.value])) };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A config schema must be an object schema TypeBox can compile, so Steward can validate configs against it. */
function parseConfigSchema(text: string): Outcome<Record<string, unknown>> {
  let schema: unknown;
  try {
    schema = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: `${CONFIG_SCHEMA_FILE} is not valid JSON: ${messageOf(error)}` };
  }
  if (!isPlainObject(schema))
    return { ok: false, reason: `${CONFIG_SCHEMA_FILE} must be a JSON Schema object` };
  if (schema.type !== undefined && schema.type !== "object") {
    return {
      ok: false,
      reason: `${CONFIG_SCHEMA_FILE} must describe an object (its "type" is ${JSON.stringify(schema.type)})`,
    };
  }
  if (schema.properties !== undefined && !isPlainObject(schema.properties)) {
    return { ok: false, reason: `${CONFIG_SCHEMA_FILE}: "properties" must be an object` };
  }
  try {
    Compile(schema);
  } catch (error) {
    return { ok: false, reason: `${CONFIG_SCHEMA_FILE} does not compile: ${messageOf(error)}` };
  }
  return { ok: true, value: schema };
}

/** The `default` of each top-level property that has one, copied so callers cannot alter the schema. */
export function defaultsOf(schema: Record<string, unknown>): Record<string, unknown> {
  const properties = isPlainObject(schema.properties) ? schema.properties : {};
  return Object.fromEntries(
    Object.entries(properties)
      .filter(([, property]) => isPlainObject(property) && Object.hasOwn(property, "default"))
      .map(([key, property]) => [key, structuredClone((property as Record<string, unknown>).default)]),
  );
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

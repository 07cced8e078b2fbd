import { isDeepStrictEqual } from "node:util";
import type { TSchema } from "typebox";
import { Compile } from "typebox/compile";
import type { FieldError } from "../errors.js";
import { type SchemaError, toFieldErrors } from "../http/field-errors.js";

/** Where a key of a managed agent's effective configuration came from. */
export type ConfigSource = "default" | "environment" | "stored" | "override";

/** A managed agent's configuration layers, weakest first. */
export interface ConfigLayers {
  defaults: Record<string, unknown>;
  environment: Record<string, unknown>;
  stored: Record<string, unknown>;
  overrides: Record<string, unknown>;
}

/** Top-level differences between two configurations. */
export interface ConfigDiff {
  added: Record<string, unknown>;
  removed: string[];
  changed: Record<string, { from: unknown; to: unknown }>;
}

const LAYER_ORDER: ReadonlyArray<[keyof ConfigLayers, ConfigSource]> = [
  ["defaults", "default"],
  ["environment", "environment"],
  ["stored", "stored"],
  ["overrides", "override"],
];

/**
 * Assigns an own property. Config arrives as parsed JSON, where "__proto__" is an
 * ordinary key; plain assignment would set the prototype instead of storing it.
 */
function put<T>(target: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Merges the layers per top-level key and says where each key's value came from. */
export function effectiveConfig(layers: ConfigLayers): {
  config: Record<string, unknown>;
  sources: Record<string, ConfigSource>;
} {
  const config: Record<string, unknown> = {};
  const sources: Record<string, ConfigSource> = {};
  for (const [layer, source] of LAYER_ORDER) {
    for (const [key, value] of Object.entries(layers[layer])) {
      put(config, key, value);
      put(sources, key, source);
    }
  }
  return { config, sources };
}

/** "log-sentinel" → "LOG_SENTINEL", the agent's part of its variable names. */
export function environmentName(agentName: string): string {
  return agentName.toUpperCase().replace(/[^A-Z0-9]/g, "_");
}

/** Whether the schema declares `key` as a string only (null aside), so its raw text is the value. */
function declaredString(schema: Record<string, unknown> | null | undefined, key: string): boolean {
  const properties = schema?.properties;
  if (properties === null || typeof properties !== "object") return false;
  const property = Object.hasOwn(properties, key) ? (properties as Record<string, unknown>)[key] : undefined;
  const type = (property as { type?: unknown } | undefined)?.type;
  if (type === "string") return true;
  if (!Array.isArray(type)) return false;
  const nonNull = type.filter((item) => item !== "null");
  return nonNull.length === 1 && nonNull[0] === "string";
}

function parseValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/**
 * The agent's keys from variables STEWARD_AGENT_<NAME>_<KEY>. Names are matched by
 * prefix, so agent "log" also sees STEWARD_AGENT_LOG_SENTINEL_* as key "sentinel_*":
 * the naming scheme cannot tell the two apart. Never reads process.env itself.
 */
export function environmentConfig(
  agentName: string,
  variables: Record<string, string>,
  schema?: Record<string, unknown> | null,
): Record<string, unknown> {
  const prefix = `STEWARD_AGENT_${environmentName(agentName)}_`;
  const config: Record<string, unknown> = {};
  for (const [variable, raw] of Object.entries(variables)) {
    if (!variable.startsWith(prefix) || variable.length === prefix.length) continue;
    const key = variable.slice(prefix.length).toLowerCase();
    put(config, key, declaredString(schema, key) ? raw : parseValue(raw));
  }
  return config;
}

/** Top-level differences: added keys with values, removed key names, changed keys with from/to. */
export function configDiff(before: Record<string, unknown>, after: Record<string, unknown>): ConfigDiff {
  const diff: ConfigDiff = { added: {}, removed: [], changed: {} };
  for (const [key, value] of Object.entries(after)) {
    if (!Object.hasOwn(before, key)) put(diff.added, key, value);
    else if (!isDeepStrictEqual(before[key], value)) put(diff.changed, key, { from: before[key], to: value });
  }
  for (const key of Object.keys(before)) {
    if (!Object.hasOwn(after, key)) diff.removed.push(key);
  }
  return diff;
}

/** Errors of `config` against the agent's declared JSON Schema, fields named "config.<path>"; [] when valid or no schema. */
export function configSchemaErrors(
  schema: Record<string, unknown> | null,
  config: Record<string, unknown>,
): FieldError[] {
  if (schema === null) return [];
  // Compiled per call: config writes are rare, and each read of a row is a new schema object.
  const validator = Compile(schema as TSchema);
  if (validator.Check(config)) return [];
  return toFieldErrors(validator.Errors(config) as SchemaError[], "config");
}

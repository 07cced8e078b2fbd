import Type, { type Static, type TSchema } from "typebox";
import { type ConfigSpec, validateConfig } from "../../agents/config-schema.js";
import { PlatformConfigError } from "./adapter.js";

/** The field shapes platform config schemas are built from, and reading a config back. */

export const text = (description: string) => Type.String({ minLength: 1, maxLength: 2048, description });

/** Webhook URLs of chat platforms embed their own access token, so they are secrets too. */
export const secret = (description: string) => Type.String({ minLength: 1, maxLength: 8192, description });

export const STRICT = { additionalProperties: false } as const;

/** A ConfigSpec that keeps its schema's type, so `create` can read the config typed. */
export interface TypedConfigSpec<S extends TSchema> extends ConfigSpec {
  schema: S;
}

/**
 * The config `create` was given, checked again against its spec. A secret the caller
 * forgot to unseal, or a config that skipped validation, fails here with the field's
 * name instead of reaching the platform as "[object Object]".
 */
export function readConfig<S extends TSchema>(
  spec: TypedConfigSpec<S>,
  config: Record<string, unknown>,
): Static<S> {
  const [problem] = validateConfig(spec, config, "platform_config");
  if (problem) throw new PlatformConfigError(problem.field, problem.message);
  return config as Static<S>;
}

import type { SecretBox } from "../crypto/secret-box.js";
import type { FieldError } from "../errors.js";
import type { AuthType, Platform } from "./agent-kinds.js";
import { AUTH_CONFIG_SPECS } from "./auth-config.js";
import { type ConfigSpec, validateConfig } from "./config-schema.js";
import { keptSecretPaths, sealSecrets } from "./credentials.js";
import { httpUrlProblem } from "./http-url.js";
import { PLATFORM_CONFIG_SPECS } from "./platform-config.js";

/**
 * Validation and sealing of the parts of an agent whose shape depends on its auth
 * type or platform. Shared by create and update so both apply the same rules.
 */

type ConfigObject = Record<string, unknown>;

export interface PreparedConfig {
  /** The config as stored (secrets sealed), or undefined when it had errors. */
  stored?: ConfigObject;
  errors: FieldError[];
  /** URLs Steward will call, by field name, that are new (not a resent stored credential). */
  destinations: Array<{ field: string; url: string }>;
}

/** Checks where an agent's URLs lead; a URL that resolves to a refused address is an error. */
export interface DestinationCheck {
  checkUrl(url: string): Promise<string | null>;
}

export async function destinationErrors(
  check: DestinationCheck,
  destinations: Array<{ field: string; url: string }>,
): Promise<FieldError[]> {
  const problems = await Promise.all(
    destinations.map(async ({ field, url }) => ({ field, message: await check.checkUrl(url) })),
  );
  return problems.filter((problem): problem is FieldError => problem.message !== null);
}

export function checkWebhookUrl(url: string): FieldError[] {
  const problem = httpUrlProblem(url);
  return problem ? [{ field: "webhook_url", message: problem }] : [];
}

function prepare(
  spec: ConfigSpec,
  section: string,
  input: ConfigObject,
  box: SecretBox,
  agentId: string,
  previous?: ConfigObject,
): PreparedConfig {
  const kept = keptSecretPaths(input, spec.secretPaths, previous);
  const errors = validateConfig(spec, input, section, kept);
  if (errors.length > 0) return { errors, destinations: [] };
  const destinations = spec.urlFields
    .filter((field) => typeof input[field] === "string" && !kept.has(field))
    .map((field) => ({ field: `${section}.${field}`, url: input[field] as string }));
  return {
    stored: sealSecrets(input, spec.secretPaths, box, { agentId, section, previous }),
    errors,
    destinations,
  };
}

/** Validates `auth_config` against `authType` and seals its secrets. */
export function prepareAuthConfig(
  authType: AuthType,
  input: ConfigObject,
  box: SecretBox,
  agentId: string,
  previous?: ConfigObject,
): PreparedConfig {
  return prepare(AUTH_CONFIG_SPECS[authType], "auth_config", input, box, agentId, previous);
}

/** Validates `platform_config` against `platform` and seals its secrets. */
export function preparePlatformConfig(
  platform: Platform,
  input: ConfigObject,
  box: SecretBox,
  agentId: string,
  previous?: ConfigObject,
): PreparedConfig {
  return prepare(PLATFORM_CONFIG_SPECS[platform], "platform_config", input, box, agentId, previous);
}

import type { SecretBox } from "../crypto/secret-box.js";

/**
 * Credentials inside an agent's `auth_config` and `platform_config` are stored sealed
 * in place: `{"$sealed": "v1.…", "hint": "abcd"}`. Responses show them masked
 * ("****abcd"); only the invoker and delivery workers unseal them.
 */

export interface SealedSecret {
  $sealed: string;
  /** The last four characters, for recognising a credential; empty for short secrets. */
  hint: string;
}

type ConfigObject = Record<string, unknown>;

const MASK = "****";
const MIN_LENGTH_FOR_HINT = 12;

export function isSealedSecret(value: unknown): value is SealedSecret {
  return typeof value === "object" && value !== null && typeof (value as SealedSecret).$sealed === "string";
}

export function maskOf(secret: SealedSecret): string {
  return `${MASK}${secret.hint}`;
}

/** Calls `visit` for every value at a secret path ("key", or "headers.*" for each map value). */
function forEachSecret(
  config: ConfigObject,
  secretPaths: readonly string[],
  visit: (holder: ConfigObject, key: string, path: string) => void,
): void {
  for (const path of secretPaths) {
    const [head, wildcard] = path.split(".") as [string, string | undefined];
    if (wildcard === undefined) {
      if (head in config) visit(config, head, head);
      continue;
    }
    const map = config[head];
    if (typeof map !== "object" || map === null) continue;
    for (const key of Object.keys(map)) visit(map as ConfigObject, key, `${head}.${key}`);
  }
}

function cloneConfig(config: ConfigObject): ConfigObject {
  return structuredClone(config);
}

/** Where a sealed value belongs; bound into the ciphertext so it cannot be moved elsewhere. */
export function secretContext(agentId: string, section: string, path: string): string {
  return `${agentId}/${section}/${path}`;
}

/**
 * Paths whose value is the mask of the credential stored at the same path in
 * `previous`: the client sent back what it read, meaning "keep this credential".
 */
export function keptSecretPaths(
  config: ConfigObject,
  secretPaths: readonly string[],
  previous: ConfigObject | undefined,
): Set<string> {
  const kept = new Set<string>();
  if (!previous) return kept;
  forEachSecret(config, secretPaths, (holder, key, path) => {
    const stored = readPath(previous, path);
    if (isSealedSecret(stored) && holder[key] === maskOf(stored)) kept.add(path);
  });
  return kept;
}

/**
 * Seals the secret values of a validated config. Values at `keptSecretPaths` keep the
 * credential stored in `previous`, so a client need not know a secret to resend it.
 */
export function sealSecrets(
  config: ConfigObject,
  secretPaths: readonly string[],
  box: SecretBox,
  context: { agentId: string; section: string; previous?: ConfigObject },
): ConfigObject {
  const kept = keptSecretPaths(config, secretPaths, context.previous);
  const sealed = cloneConfig(config);
  forEachSecret(sealed, secretPaths, (holder, key, path) => {
    const plaintext = holder[key];
    if (typeof plaintext !== "string") return;
    if (kept.has(path)) {
      holder[key] = readPath(context.previous, path);
      return;
    }
    holder[key] = {
      $sealed: box.seal(plaintext, secretContext(context.agentId, context.section, path)),
      hint: plaintext.length >= MIN_LENGTH_FOR_HINT ? plaintext.slice(-4) : "",
    } satisfies SealedSecret;
  });
  return sealed;
}

/** Replaces every sealed value in a stored config with its mask. */
export function maskSecrets(config: ConfigObject): ConfigObject {
  const masked: ConfigObject = {};
  for (const [key, value] of Object.entries(config)) {
    if (isSealedSecret(value)) masked[key] = maskOf(value);
    else if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      masked[key] = maskSecrets(value as ConfigObject);
    } else masked[key] = value;
  }
  return masked;
}

/** The plaintext config, for the code that calls the agent or its platform. */
export function unsealSecrets(
  config: ConfigObject,
  secretPaths: readonly string[],
  box: SecretBox,
  context: { agentId: string; section: string },
): ConfigObject {
  const plain = cloneConfig(config);
  forEachSecret(plain, secretPaths, (holder, key, path) => {
    const value = holder[key];
    if (isSealedSecret(value)) {
      holder[key] = box.open(value.$sealed, secretContext(context.agentId, context.section, path));
    }
  });
  return plain;
}

function readPath(config: ConfigObject | undefined, path: string): unknown {
  // Secret paths are one or two levels deep; a header name may itself contain dots.
  const dot = path.indexOf(".");
  if (dot === -1) return config?.[path];
  const map = config?.[path.slice(0, dot)];
  return typeof map === "object" && map !== null ? (map as ConfigObject)[path.slice(dot + 1)] : undefined;
}

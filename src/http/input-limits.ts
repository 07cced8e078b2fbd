import type { FieldError } from "../errors.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /**
     * Text passing through to an agent (a call's input): NUL and unpaired surrogates are
     * taken in and stored replaced (see storableText) rather than refused.
     */
    passesAnyText?: boolean;
  }
}

/** Deeper JSON than any Steward document needs; validators and serialisers recurse over it. */
export const MAX_JSON_DEPTH = 64;

/**
 * The first place in a request body that Steward cannot take in whole: nesting deeper
 * than MAX_JSON_DEPTH, or — unless `anyText` — a string (value or key) with a NUL
 * character or an unpaired surrogate, which PostgreSQL refuses to store. Undefined when
 * there is none.
 */
export function unacceptableJson(
  value: unknown,
  anyText: boolean,
  path = "",
  depth = 0,
): FieldError | undefined {
  if (typeof value === "string") return anyText ? undefined : stringProblem(value, path || "body");
  // Raw bodies (bytes) are their route's to read.
  if (typeof value !== "object" || value === null || value instanceof Uint8Array) return undefined;
  if (depth >= MAX_JSON_DEPTH)
    return { field: path || "body", message: `nests deeper than ${MAX_JSON_DEPTH} levels` };
  const entries: Iterable<[string, unknown]> = Array.isArray(value)
    ? value.map((item, index) => [String(index), item])
    : Object.entries(value);
  for (const [key, item] of entries) {
    const field = path === "" ? key : Array.isArray(value) ? `${path}[${key}]` : `${path}.${key}`;
    const problem =
      (anyText ? undefined : stringProblem(key, field)) ?? unacceptableJson(item, anyText, field, depth + 1);
    if (problem) return problem;
  }
  return undefined;
}

function stringProblem(text: string, field: string): FieldError | undefined {
  if (text.includes("\u0000")) return { field, message: "must not contain a NUL character (\\u0000)" };
  if (!text.isWellFormed()) return { field, message: "must not contain an unpaired UTF-16 surrogate" };
  return undefined;
}

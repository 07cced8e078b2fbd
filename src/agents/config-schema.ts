import type { TSchema } from "typebox";
import { Compile } from "typebox/compile";
import type { FieldError } from "../errors.js";
import { type SchemaError, toFieldErrors } from "../http/field-errors.js";
import { httpUrlProblem } from "./http-url.js";

/**
 * A per-kind configuration schema (one auth type, one platform) and what in it is
 * secret. `secretPaths` are dotted paths; `headers.*` means every value of that map.
 */
export interface ConfigSpec {
  schema: TSchema;
  secretPaths: readonly string[];
  /** Fields holding URLs that Steward will call. */
  urlFields: readonly string[];
  /**
   * Checks the schema cannot express — values the platform or HTTP is known to refuse —
   * run once the schema passes, with fields named relative to the config.
   */
  refine?: (config: Record<string, unknown>) => FieldError[];
}

/** An HTTP header name (an RFC 9110 token). */
export const HEADER_NAME_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$";

const compiled = new WeakMap<TSchema, ReturnType<typeof Compile>>();

/**
 * Validates `value` against a spec, naming fields under `prefix` (e.g. "auth_config").
 * Fields in `keptFields` resend a stored credential as its mask; it was checked when stored.
 */
export function validateConfig(
  spec: ConfigSpec,
  value: unknown,
  prefix: string,
  keptFields: ReadonlySet<string> = new Set(),
): FieldError[] {
  let check = compiled.get(spec.schema);
  if (!check) {
    check = Compile(spec.schema);
    compiled.set(spec.schema, check);
  }
  if (!check.Check(value)) {
    return toFieldErrors(check.Errors(value) as SchemaError[], prefix);
  }
  const config = value as Record<string, unknown>;
  const errors: FieldError[] = [];
  for (const field of spec.urlFields) {
    const url = config[field];
    if (typeof url !== "string" || keptFields.has(field)) continue;
    const problem = httpUrlProblem(url);
    if (problem) errors.push({ field: `${prefix}.${field}`, message: problem });
  }
  for (const problem of spec.refine?.(config) ?? []) {
    if (!keptFields.has(problem.field)) errors.push({ ...problem, field: `${prefix}.${problem.field}` });
  }
  return errors;
}

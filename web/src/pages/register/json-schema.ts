/**
 * The part of JSON Schema the registration forms are generated from (what TypeBox emits
 * for the adapters' config schemas and the governance sections), and the pure functions behind those forms: what kind
 * of control a property gets, the JSON a filled-in form stands for, and which required
 * fields are still empty.
 */

export interface JsonSchema {
  type?: "object" | "string" | "number" | "integer" | "boolean" | "array" | "null";
  title?: string;
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  patternProperties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  enum?: Array<string | number>;
  const?: string | number | boolean;
  anyOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  pattern?: string;
}

/** One config form as GET /external-agents/config-schemas answers it. */
export interface ConfigForm {
  schema: JsonSchema;
  secret_fields: string[];
  url_fields: string[];
}

/** A name/value pair of a map field (such as headers), kept in the order it was typed. */
export interface MapRow {
  key: string;
  value: string;
}

/** What a form holds while it is filled in: the text of each control, not yet JSON. */
export type RawValue = string | boolean | string[] | MapRow[] | RawObject;
export interface RawObject {
  [name: string]: RawValue | undefined;
}

/**
 * The control a property gets. "json" is the fallback for what no control draws (arrays
 * of objects, unions of objects, maps of non-text values): a textarea holding its JSON.
 */
export type FieldKind =
  | "object"
  | "map"
  | "boolean"
  | "choice"
  | "choices"
  | "list"
  | "number"
  | "text"
  | "json";

/** The values of an enum, or of an anyOf of constants (TypeBox's literal unions). */
export function choicesOf(schema: JsonSchema): Array<string | number> | undefined {
  if (schema.enum) return schema.enum;
  if (schema.anyOf?.every((option) => option.const !== undefined)) {
    return schema.anyOf.map((option) => option.const as string | number);
  }
  return undefined;
}

const isNumeric = (schema: JsonSchema) => schema.type === "number" || schema.type === "integer";

/** A value typed into one line of text: a string, a number, a choice, or a union of those. */
function isScalar(schema: JsonSchema): boolean {
  if (choicesOf(schema)) return true;
  if (schema.anyOf) return schema.anyOf.every(isScalar);
  return schema.type === "string" || isNumeric(schema);
}

/** A schema that says nothing about its value (TypeBox's Unknown, or `true`). */
const isUnconstrained = (schema: JsonSchema | boolean | undefined) =>
  schema === undefined ||
  schema === true ||
  (typeof schema === "object" && !schema.type && !schema.anyOf && !schema.enum && schema.const === undefined);

/** An object without named properties whose values are all text: name/value rows can stand for it. */
function isTextMap(schema: JsonSchema): boolean {
  const values = [
    ...Object.values(schema.patternProperties ?? {}),
    ...(schema.additionalProperties === false ? [] : [schema.additionalProperties]),
  ];
  return (
    values.length > 0 &&
    values.every((value) => isUnconstrained(value) || (typeof value === "object" && value.type === "string"))
  );
}

/** Which control renders `schema`. */
export function kindOf(schema: JsonSchema): FieldKind {
  if (choicesOf(schema)) return "choice";
  // A union of scalars (a chat id, a duration) is typed as text; any other union as JSON.
  if (schema.anyOf) return schema.anyOf.every(isScalar) ? "text" : "json";
  switch (schema.type) {
    case "object":
      if (schema.properties) return "object";
      return isTextMap(schema) ? "map" : "json";
    case "boolean":
      return "boolean";
    case "array":
      if (schema.items && choicesOf(schema.items)) return "choices";
      return schema.items && isScalar(schema.items) ? "list" : "json";
    case "number":
    case "integer":
      return "number";
    case "string":
      return "text";
    default:
      return "json";
  }
}

/** The branch of a union of scalars a typed number is checked against, when it has one. */
function numericBranch(schema: JsonSchema, text: string): JsonSchema | undefined {
  if (isNumeric(schema)) return schema;
  if (!schema.anyOf || text === "" || !Number.isFinite(Number(text))) return undefined;
  const whole = /^-?\d+$/.test(text);
  return (
    schema.anyOf.find((option) => option.type === "integer" && whole) ??
    schema.anyOf.find((option) => option.type === "number")
  );
}

/** The JSON of a scalar typed as text: numbers where the schema takes them, else the text. */
function scalarJson(schema: JsonSchema, text: string): unknown {
  const choices = choicesOf(schema);
  if (choices) return choices.find((choice) => String(choice) === text) ?? text;
  if (isNumeric(schema)) return Number(text);
  return numericBranch(schema, text) ? Number(text) : text;
}

function asText(raw: RawValue | undefined): string {
  return typeof raw === "string" ? raw : "";
}

function asObject(raw: RawValue | undefined): RawObject {
  return typeof raw === "object" && raw !== null && !Array.isArray(raw) ? raw : {};
}

/** The lines of a list field, blank ones dropped. */
export function linesOf(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
}

/** Whether a checkbox shows ticked: what was clicked, else the schema's default. */
export function isChecked(schema: JsonSchema, raw: RawValue | undefined): boolean {
  return raw === undefined ? schema.default === true : raw === true;
}

/** The JSON a control's raw value stands for, or undefined when it is left empty (the property is omitted). */
export function toJson(schema: JsonSchema, raw: RawValue | undefined): unknown {
  switch (kindOf(schema)) {
    case "object":
      return objectToJson(schema, asObject(raw));
    case "map": {
      const rows = Array.isArray(raw) ? (raw as MapRow[]).filter((row) => row.key.trim()) : [];
      return rows.length > 0 ? Object.fromEntries(rows.map((row) => [row.key.trim(), row.value])) : undefined;
    }
    case "boolean":
      // Unticking a box whose default is true has to be said; otherwise unticked is the default.
      if (raw === true) return true;
      return raw === false && schema.default === true ? false : undefined;
    case "choice": {
      const text = asText(raw);
      return text === "" ? undefined : choicesOf(schema)?.find((choice) => String(choice) === text);
    }
    case "choices": {
      const picked = Array.isArray(raw) ? (raw as string[]) : [];
      return picked.length > 0 && schema.items
        ? picked.map((item) => scalarJson(schema.items ?? {}, item))
        : undefined;
    }
    case "list": {
      const items = linesOf(asText(raw));
      return items.length > 0 ? items.map((item) => scalarJson(schema.items ?? {}, item)) : undefined;
    }
    case "number":
    case "text": {
      const text = asText(raw).trim();
      return text === "" ? undefined : scalarJson(schema, text);
    }
    case "json": {
      const text = asText(raw).trim();
      if (text === "") return undefined;
      // Text that is not JSON is sent as it is, for Steward to name the field, never dropped.
      const parsed = parseJson(text);
      return parsed ? parsed.value : text;
    }
  }
}

function parseJson(text: string): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(text) };
  } catch {
    return undefined;
  }
}

function objectToJson(schema: JsonSchema, raw: RawObject): Record<string, unknown> | undefined {
  const properties = Object.entries(schema.properties ?? {});
  const values = properties.map(([name, property]) => [name, toJson(property, raw[name])] as const);
  if (values.every(([, value]) => value === undefined)) return undefined;
  // A filled-in object sends its required sub-objects even when they are empty (approval
  // triggers), in schema order.
  const required = new Set(schema.required ?? []);
  const result: Record<string, unknown> = {};
  for (const [index, [name, value]] of values.entries()) {
    const property = properties[index]?.[1];
    if (value !== undefined) result[name] = value;
    else if (required.has(name) && property && kindOf(property) === "object") result[name] = {};
  }
  return result;
}

/** The config object a form stands for: never undefined, as the API expects an object. */
export function configJson(schema: JsonSchema, raw: RawObject | undefined): Record<string, unknown> {
  return objectToJson(schema, raw ?? {}) ?? {};
}

/**
 * Problems the form can see before asking Steward: required fields left empty (in
 * objects that are filled in at all), numbers that are not or are out of range, text
 * that does not match its pattern, and JSON fields that are not JSON. Keyed like the
 * server's field errors (`platform_config.webhook_url`); Steward checks the rest.
 */
export function formErrors(
  schema: JsonSchema,
  raw: RawObject | undefined,
  path: string,
): Record<string, string> {
  const errors: Record<string, string> = {};
  collectErrors(schema, raw ?? {}, path, true, errors);
  return errors;
}

function collectErrors(
  schema: JsonSchema,
  raw: RawObject,
  path: string,
  present: boolean,
  errors: Record<string, string>,
): void {
  const required = new Set(schema.required ?? []);
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    const at = `${path}.${name}`;
    const value = raw[name];
    const kind = kindOf(property);
    if (kind === "object") {
      const filled = toJson(property, value) !== undefined;
      collectErrors(property, asObject(value), at, filled || (present && required.has(name)), errors);
      continue;
    }
    if (!present) continue;
    if (required.has(name) && toJson(property, value) === undefined) {
      errors[at] = "is required";
      continue;
    }
    const problem = valueProblem(property, kind, value);
    if (problem) errors[at] = problem;
  }
}

function valueProblem(schema: JsonSchema, kind: FieldKind, raw: RawValue | undefined): string | undefined {
  const text = asText(raw).trim();
  switch (kind) {
    case "number":
    case "text":
      return text === "" ? undefined : scalarProblem(schema, text);
    case "list": {
      const lines = linesOf(text);
      for (const [index, line] of lines.entries()) {
        const problem = scalarProblem(schema.items ?? {}, line);
        if (problem) return lines.length === 1 ? problem : `line ${index + 1} ${problem}`;
      }
      return undefined;
    }
    case "map":
      return Array.isArray(raw) && (raw as MapRow[]).some((row) => !row.key.trim() && row.value)
        ? "every value needs a name"
        : undefined;
    case "json": {
      if (text === "") return undefined;
      const parsed = parseJson(text);
      if (!parsed) return "must be valid JSON";
      const { value } = parsed;
      const type = Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
      if (schema.type === "array" && type !== "array") return "must be a JSON array";
      if (schema.type === "object" && type !== "object") return "must be a JSON object";
      return undefined;
    }
    default:
      return undefined;
  }
}

/** Whether `text` matches a schema pattern; one this browser cannot compile is left to Steward. */
function matches(pattern: string, text: string): boolean {
  try {
    return new RegExp(pattern, "u").test(text);
  } catch {
    return true;
  }
}

/** What is wrong with `text` typed for a scalar schema, in the words of Steward's own field errors. */
function scalarProblem(schema: JsonSchema, text: string): string | undefined {
  if (isNumeric(schema)) {
    const number = Number(text);
    if (!Number.isFinite(number)) return "must be a number";
    if (schema.type === "integer" && !Number.isInteger(number)) return "must be a whole number";
    if (schema.minimum !== undefined && number < schema.minimum) return `must be at least ${schema.minimum}`;
    if (schema.maximum !== undefined && number > schema.maximum) return `must be at most ${schema.maximum}`;
    if (schema.exclusiveMinimum !== undefined && number <= schema.exclusiveMinimum)
      return `must be more than ${schema.exclusiveMinimum}`;
    if (schema.exclusiveMaximum !== undefined && number >= schema.exclusiveMaximum)
      return `must be less than ${schema.exclusiveMaximum}`;
    return undefined;
  }
  if (schema.type === "string") {
    return schema.pattern && !matches(schema.pattern, text) ? "is not in the expected form" : undefined;
  }
  if (schema.anyOf && !choicesOf(schema)) {
    // A number goes to its numeric branch (as toJson sends it); other text must suit a string branch.
    const numeric = numericBranch(schema, text);
    if (numeric) return scalarProblem(numeric, text);
    const strings = schema.anyOf.filter((option) => option.type === "string");
    if (strings.length === 0) return "must be a number";
    return strings.some((option) => scalarProblem(option, text) === undefined)
      ? undefined
      : "is not in an accepted form";
  }
  return undefined;
}

/** A short sketch of the JSON a schema takes, for the help of a JSON field: `[{"name": …}]`. */
export function jsonExample(schema: JsonSchema, depth = 0): string {
  const choices = choicesOf(schema);
  if (choices) return JSON.stringify(choices[0]);
  if (depth > 1) return "…";
  if (schema.anyOf) return schema.anyOf.map((option) => jsonExample(option, depth)).join(" or ");
  switch (schema.type) {
    case "array":
      return `[${schema.items ? jsonExample(schema.items, depth + 1) : "…"}]`;
    case "object": {
      const names = Object.keys(schema.properties ?? {});
      if (names.length === 0) return '{"name": …}';
      const shown = names.slice(0, 3).map((name) => `"${name}": …`);
      return `{${[...shown, ...(names.length > 3 ? ["…"] : [])].join(", ")}}`;
    }
    case "string":
      return '"…"';
    case "number":
    case "integer":
      return "1";
    case "boolean":
      return "true";
    case "null":
      return "null";
    default:
      return "…";
  }
}

/** The error for a control at `path`: its own, or the first one Steward gave for something inside it. */
export function errorAt(errors: Record<string, string>, path: string): string | undefined {
  if (errors[path]) return errors[path];
  const inside = Object.keys(errors).find((key) => key.startsWith(`${path}.`) || key.startsWith(`${path}[`));
  return inside === undefined
    ? undefined
    : `${inside.slice(path.length).replace(/^\./, "")}: ${errors[inside]}`;
}

/** `errors` without those at `path` or inside it: a field's message goes once the field is edited. */
export function withoutErrorsAt(errors: Record<string, string>, path: string): Record<string, string> {
  return Object.fromEntries(
    Object.entries(errors).filter(
      ([key]) => key !== path && !key.startsWith(`${path}.`) && !key.startsWith(`${path}[`),
    ),
  );
}

/** A copy of `config` with its secret fields (`webhook_url`, `headers.*`) replaced by `mask`. */
export function maskSecrets(
  config: Record<string, unknown>,
  secretFields: readonly string[],
  mask: string,
): Record<string, unknown> {
  const masked: Record<string, unknown> = { ...config };
  for (const field of secretFields) {
    if (field.endsWith(".*")) {
      const name = field.slice(0, -2);
      const map = masked[name];
      if (typeof map === "object" && map !== null) {
        masked[name] = Object.fromEntries(Object.keys(map).map((key) => [key, mask]));
      }
    } else if (masked[field] !== undefined) {
      masked[field] = mask;
    }
  }
  return masked;
}

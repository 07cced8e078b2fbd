import fc from "fast-check";

/**
 * fast-check arbitraries drawn from the JSON Schemas of Steward's OpenAPI document: values a
 * schema accepts, and values it certainly refuses (wrong type, missing or unknown field, too
 * long, out of its enum or pattern). A bad value is only ever put where the schema has a
 * single reading, so a request carrying it is invalid whatever the rest of the request holds.
 */

/** The part of JSON Schema that Steward's request schemas use, as /openapi.json shows them. */
export interface JsonSchema {
  type?: string;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  maxProperties?: number;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
}

type JsonType = "string" | "integer" | "number" | "boolean" | "null" | "array" | "object";

/** Realistic values for fields by name (a reachable URL, a semantic version), where any string would be refused. */
export type Hints = Record<string, fc.Arbitrary<unknown>>;

/** A place in a request body: the path to it and the schema that governs it. */
export interface Site {
  path: Array<string | number>;
  schema: JsonSchema;
}

const SHORT_TEXT = 12;

function typeOf(value: unknown): JsonType {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value as JsonType;
}

/** The JSON types a schema lets through, or undefined when it lets everything through. */
export function allowedTypes(schema: JsonSchema): Set<JsonType> | undefined {
  if (schema.enum) return new Set(schema.enum.map(typeOf));
  if (schema.anyOf) {
    const branches = schema.anyOf.map(allowedTypes);
    if (branches.some((branch) => branch === undefined)) return undefined;
    return new Set(branches.flatMap((branch) => [...(branch ?? [])]));
  }
  return schema.type ? new Set([schema.type as JsonType]) : undefined;
}

/** The only branch of `kind` a value of that kind can match, when there is exactly one. */
function soleBranch(schema: JsonSchema, kind: "object" | "array"): JsonSchema | undefined {
  if (schema.type === kind) return schema;
  if (!schema.anyOf || allowedTypes(schema) === undefined) return undefined;
  const matching = schema.anyOf.filter((branch) => branch.type === kind);
  return matching.length === 1 ? matching[0] : undefined;
}

/** The object schema a value at this place must match, when there is only one. */
export function objectSchema(schema: JsonSchema): JsonSchema | undefined {
  return soleBranch(schema, "object");
}

/** Every place in a body whose schema is unambiguous: through objects, array items and single-object unions. */
export function sitesOf(schema: JsonSchema, path: Site["path"] = []): Site[] {
  const sites: Site[] = [{ path, schema }];
  for (const [name, child] of Object.entries(objectSchema(schema)?.properties ?? {}))
    sites.push(...sitesOf(child, [...path, name]));
  const items = soleBranch(schema, "array")?.items;
  if (items) sites.push(...sitesOf(items, [...path, 0]));
  return sites;
}

/** Dictionary keys that are plain own properties, never the accessor of an object's prototype. */
const plainKey = fc.string({ minLength: 1, maxLength: 8 }).filter((key) => key !== "__proto__");

function validString(schema: JsonSchema): fc.Arbitrary<string> {
  const minLength = schema.minLength ?? 0;
  // Short unless a pattern fixes the length (a 32-digit trace id).
  const maxLength = schema.maxLength ?? (schema.pattern ? Number.POSITIVE_INFINITY : minLength + SHORT_TEXT);
  if (schema.format === "date-time")
    return fc
      .date({ min: new Date("2000-01-01"), max: new Date("2099-12-31"), noInvalidDate: true })
      .map((date) => date.toISOString());
  if (schema.format === "email") return fc.stringMatching(/^[a-z]{1,8}@example\.com$/);
  const slug = fc.stringMatching(/^[a-z][a-z0-9-]*$/, { size: "small" });
  if (!schema.pattern) return slug.filter((value) => value.length >= minLength && value.length <= maxLength);
  // A slug where the pattern takes one (readable names), else a string made for the pattern.
  const pattern = new RegExp(schema.pattern);
  return fc
    .oneof(slug, fc.stringMatching(pattern))
    .filter((value) => pattern.test(value) && value.length >= minLength && value.length <= maxLength);
}

function validObject(schema: JsonSchema, hints: Hints): fc.Arbitrary<Record<string, unknown>> {
  const properties = Object.fromEntries(
    Object.entries(schema.properties ?? {}).map(([name, child]) => [
      name,
      hints[name] ?? validValue(child, hints),
    ]),
  );
  const record = fc.record(properties, { requiredKeys: schema.required ?? [] });
  const extra = schema.additionalProperties;
  if (extra === undefined || extra === false || Object.keys(properties).length > 0) return record;
  // A free-form object (a config, metadata): a few entries of whatever its values may be.
  const values = extra === true ? fc.jsonValue({ maxDepth: 1 }) : validValue(extra, hints);
  return fc.dictionary(plainKey, values, { maxKeys: Math.min(schema.maxProperties ?? 3, 3) });
}

/** A value the schema accepts; `hints` give the fields named in them realistic values. */
export function validValue(schema: JsonSchema, hints: Hints = {}): fc.Arbitrary<unknown> {
  if (schema.enum) return fc.constantFrom(...schema.enum);
  if (schema.anyOf) return fc.oneof(...schema.anyOf.map((branch) => validValue(branch, hints)));
  switch (schema.type) {
    case "string":
      return validString(schema);
    case "integer": {
      const min = schema.minimum ?? (schema.exclusiveMinimum ?? -1_001) + 1;
      return fc.integer({ min, max: schema.maximum ?? Math.max(min, 0) + 1_000 });
    }
    case "number": {
      const min = schema.minimum ?? schema.exclusiveMinimum ?? -1_000;
      return fc.double({
        min,
        minExcluded: schema.minimum === undefined && schema.exclusiveMinimum !== undefined,
        max: schema.maximum ?? Math.max(min, 0) + 1_000,
        noNaN: true,
      });
    }
    case "boolean":
      return fc.boolean();
    case "null":
      return fc.constant(null);
    case "array": {
      const minLength = schema.minItems ?? 0;
      const constraints = { minLength, maxLength: Math.min(schema.maxItems ?? 3, minLength + 3) };
      const items = validValue(schema.items ?? {}, hints);
      return schema.uniqueItems
        ? fc.uniqueArray(items, { ...constraints, selector: (item) => JSON.stringify(item) })
        : fc.array(items, constraints);
    }
    case "object":
      return validObject(schema, hints);
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

/** A value whose JSON type the schema does not allow, or undefined when it allows every type. */
export function wrongTypeValue(schema: JsonSchema): fc.Arbitrary<unknown> | undefined {
  const allowed = allowedTypes(schema);
  if (!allowed) return undefined;
  const numeric = allowed.has("number") || allowed.has("integer");
  const candidates: Array<fc.Arbitrary<unknown> | false> = [
    !allowed.has("string") && fc.string({ maxLength: 8 }),
    !numeric && fc.integer(),
    !allowed.has("number") &&
      fc.double({ noNaN: true, noDefaultInfinity: true }).filter((value) => !Number.isInteger(value)),
    !allowed.has("boolean") && fc.boolean(),
    !allowed.has("null") && fc.constant(null),
    !allowed.has("array") && fc.array(fc.integer(), { maxLength: 2 }),
    !allowed.has("object") && fc.dictionary(plainKey, fc.integer(), { maxKeys: 2 }),
  ];
  const arbitraries = candidates.filter((candidate) => candidate !== false);
  return arbitraries.length > 0 ? fc.oneof(...arbitraries) : undefined;
}

/** Lower-case words that no query-string conversion reads as a number or a boolean. */
const WORD = fc.stringMatching(/^[a-z]{1,8}$/).filter((word) => word !== "true" && word !== "false");

/**
 * A query-string value the parameter's schema refuses even after Fastify's conversion of
 * query strings to numbers and booleans, or undefined for a free-form string parameter.
 */
export function wrongQueryValue(schema: JsonSchema): fc.Arbitrary<string> | undefined {
  const allowed = allowedTypes(schema);
  if (!allowed) return undefined;
  if (schema.enum) return WORD.filter((word) => !schema.enum?.includes(word));
  if (allowed.has("string")) {
    if (schema.format === "date-time") return WORD;
    const pattern = schema.pattern;
    if (!pattern) return undefined;
    const refused = ["a b", "!", "\u0000", "\u{1f4a9}"].filter(
      (text) => !new RegExp(pattern, "u").test(text),
    );
    return refused.length > 0 ? fc.constantFrom(...refused) : undefined;
  }
  const { minimum, maximum } = schema;
  const distance = fc.integer({ min: 1, max: 1_000 });
  const outOfRange: Array<fc.Arbitrary<string>> = [];
  if (minimum !== undefined) outOfRange.push(distance.map((below) => String(minimum - below)));
  if (maximum !== undefined) outOfRange.push(distance.map((above) => String(maximum + above)));
  return fc.oneof(WORD, ...outOfRange);
}

/**
 * Pieces of text at the edges of Unicode and JSON: NUL and other controls, lone surrogates,
 * bidirectional overrides, zero-width and exotic spaces, a byte-order mark, combining marks,
 * noncharacters, astral emoji and a ZWJ family.
 */
const UNICODE_PIECES = [
  "\u0000",
  "\u001b[31m",
  "\ud800",
  "\udfff",
  "\u202e",
  "\u200f",
  "\u200b",
  "\u2028",
  "\u3000",
  "\ufeff",
  "e\u0301\u0301",
  "\uffff",
  "\u{1f4a9}",
  "\u{1f469}\u200d\u{1f469}\u200d\u{1f467}",
  "\u{1d54f}",
];

/** A short string made of those pieces. */
export const unicodeEdge = fc
  .array(fc.constantFrom(...UNICODE_PIECES), { minLength: 1, maxLength: 4 })
  .map((pieces) => pieces.join(""));

/** How many code points a string has (what JSON Schema's maxLength counts). */
function codePoints(text: string): number {
  return [...text].length;
}

/**
 * A string of Unicode edge pieces that a string schema with an enum, a pattern, a format or a
 * maxLength certainly refuses (too long counted in code points, so in UTF-16 units too), or
 * undefined for a free-form string.
 */
export function unicodeRefusedBy(schema: JsonSchema): fc.Arbitrary<string> | undefined {
  if (schema.enum) return unicodeEdge.filter((text) => !schema.enum?.includes(text));
  if (schema.type !== "string") return undefined;
  if (schema.pattern) {
    const pattern = schema.pattern;
    const matches = (text: string) => new RegExp(pattern).test(text) || new RegExp(pattern, "u").test(text);
    // Joined from pieces the pattern refuses one by one, so that a refused string is found at once.
    const refused = UNICODE_PIECES.filter((piece) => !matches(piece));
    if (refused.length === 0) return undefined;
    return fc
      .array(fc.constantFrom(...refused), { minLength: 1, maxLength: 4 })
      .map((pieces) => pieces.join(""))
      .filter((text) => !matches(text));
  }
  // An edge piece is never ASCII: no date-time or ASCII e-mail address can hold one.
  if (schema.format) return unicodeEdge;
  const maxLength = schema.maxLength;
  if (maxLength === undefined) return undefined;
  return fc
    .array(unicodeEdge, { minLength: 1, maxLength: 4 })
    .map((pieces) => pieces.join(""))
    .map((text) => text.repeat(Math.ceil((maxLength + 1) / codePoints(text))))
    .filter((text) => codePoints(text) > maxLength);
}

/** The value at `path`, or undefined when some part of the path is missing. */
export function valueAt(root: unknown, path: Site["path"]): unknown {
  let node = root;
  for (const segment of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string | number, unknown>)[segment];
  }
  return node;
}

/** A copy of `root` with `value` at `path`, creating (or replacing) the containers on the way. */
export function withValueAt(root: unknown, path: Site["path"], value: unknown): unknown {
  const [head, ...rest] = path;
  if (head === undefined) return value;
  if (typeof head === "number") {
    const array = Array.isArray(root) ? [...root] : [];
    array[head] = withValueAt(array[head], rest, value);
    return array;
  }
  const object = root !== null && typeof root === "object" && !Array.isArray(root) ? { ...root } : {};
  // defineProperty: a key is always an own property, whatever its name.
  Object.defineProperty(object, head, {
    value: withValueAt((object as Record<string, unknown>)[head], rest, value),
    enumerable: true,
    writable: true,
    configurable: true,
  });
  return object;
}

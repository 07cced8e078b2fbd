/**
 * Turns an agent's declared config schema (JSON Schema) into form fields, and a field's
 * text into the value stored. Only what a form needs is read; the server validates.
 */

export type FieldKind = "enum" | "boolean" | "integer" | "number" | "string" | "json";

export interface ConfigField {
  key: string;
  kind: FieldKind;
  description?: string;
  options: unknown[];
}

interface PropertySchema {
  type?: unknown;
  enum?: unknown;
  description?: unknown;
}

/** One field per declared property, or null when the schema declares none (edit as JSON then). */
export function configFields(schema: Record<string, unknown> | null): ConfigField[] | null {
  const properties = schema?.properties;
  if (properties === null || typeof properties !== "object" || Object.keys(properties).length === 0)
    return null;
  return Object.entries(properties as Record<string, PropertySchema>).map(([key, property]) => ({
    key,
    kind: kindOf(property),
    description: typeof property.description === "string" ? property.description : undefined,
    options: Array.isArray(property.enum) ? property.enum : [],
  }));
}

function kindOf(property: PropertySchema): FieldKind {
  if (Array.isArray(property.enum)) return "enum";
  const types = Array.isArray(property.type)
    ? property.type.filter((type) => type !== "null")
    : [property.type];
  const [type] = types;
  if (
    types.length === 1 &&
    (type === "boolean" || type === "integer" || type === "number" || type === "string")
  )
    return type;
  return "json";
}

/** The text a field shows for a value ("" for none): strings as they are, anything else as JSON. */
export function toText(value: unknown): string {
  if (value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

export class InvalidJsonError extends Error {
  override name = "InvalidJsonError";
}

/**
 * The value a field's text stands for; undefined when empty (the key is left out). A
 * number field's text that is no number is sent as it is, for the server to refuse
 * with its own message.
 */
export function fromText(field: ConfigField, text: string): unknown {
  if (text === "") return undefined;
  switch (field.kind) {
    case "string":
      return text;
    case "integer":
    case "number":
      return text.trim() !== "" && Number.isFinite(Number(text)) ? Number(text) : text;
    case "boolean":
      return text === "true";
    case "enum":
      return field.options.find((option) => toText(option) === text) ?? text;
    case "json":
      try {
        return JSON.parse(text);
      } catch {
        throw new InvalidJsonError("is not valid JSON");
      }
  }
}

/** Validation errors of a PUT …/config, by config key; the rest (whole-config errors) under "". */
export function errorsByKey(fieldErrors: Record<string, string>, keys: string[]): Record<string, string> {
  const byKey: Record<string, string> = {};
  for (const [field, message] of Object.entries(fieldErrors)) {
    const key = keys.find(
      (candidate) =>
        field === `config.${candidate}` ||
        field.startsWith(`config.${candidate}.`) ||
        field.startsWith(`config.${candidate}[`),
    );
    const at = key ?? "";
    const text =
      key === undefined && field !== "config" ? `${field.replace(/^config\./, "")}: ${message}` : message;
    byKey[at] = byKey[at] ? `${byKey[at]}; ${text}` : text;
  }
  return byKey;
}

import type { FieldError } from "../errors.js";

/** The shape shared by Ajv and TypeBox validation errors. */
export interface SchemaError {
  keyword: string;
  instancePath: string;
  schemaPath?: string;
  params: Record<string, unknown>;
  message?: string;
}

/** "/auth_config/headers/0" → "auth_config.headers[0]" */
export function pointerToField(pointer: string, prefix = ""): string {
  const segments = pointer
    .split("/")
    .slice(1)
    .map((segment) => segment.replace(/~1/g, "/").replace(/~0/g, "~"));
  let field = prefix;
  for (const segment of segments) {
    if (/^\d+$/.test(segment)) field += `[${segment}]`;
    else field += field ? `.${segment}` : segment;
  }
  return field;
}

function join(parent: string, child: string): string {
  return parent ? `${parent}.${child}` : child;
}

/** Turns schema validation errors into `{field, message}` pairs a client can show next to its inputs. */
export function toFieldErrors(errors: readonly SchemaError[], prefix = ""): FieldError[] {
  const result: FieldError[] = [];
  const seen = new Set<string>();
  const add = (field: string, message: string) => {
    const key = `${field}\u0000${message}`;
    if (seen.has(key)) return;
    seen.add(key);
    result.push({ field: field || prefix || "(root)", message });
  };
  for (const error of errors) {
    const at = pointerToField(error.instancePath, prefix);
    if (error.keyword === "required") {
      const missing = (error.params.requiredProperties as string[] | undefined) ?? [
        error.params.missingProperty as string,
      ];
      for (const property of missing) add(join(at, property), "is required");
    } else if (error.keyword === "additionalProperties") {
      // TypeBox lists every extra property in one error; Ajv reports one per error.
      const extra =
        (error.params.additionalProperties as string[] | undefined) ??
        (error.params.additionalProperty as string | undefined) ??
        [];
      for (const property of Array.isArray(extra) ? extra : [extra])
        add(join(at, property), "is not allowed");
    } else if (error.keyword === "boolean" && error.schemaPath?.endsWith("additionalProperties")) {
      // TypeBox reports each extra property twice; the additionalProperties entry covers it.
    } else {
      add(at, error.message ?? "is invalid");
    }
  }
  return result;
}

/** An operation of an OpenAPI document, as far as a caller needs it to build a request. */
export interface Operation {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  /** `external-agents/{id}`: each path parameter with the segment before it, which names its kind. */
  slots: string[];
  requiredQuery: string[];
  hasBody: boolean;
  /** `METHOD /path`, as the document spells it. */
  name: string;
}

interface OpenApiDocument {
  paths: Record<
    string,
    Record<
      string,
      { parameters?: Array<{ name: string; in: string; required?: boolean }>; requestBody?: unknown }
    >
  >;
}

const METHODS = new Set(["GET", "POST", "PUT", "PATCH", "DELETE"]);

/** Every operation of the document that names something in its path. */
export function operationsWithPathParameters(document: OpenApiDocument): Operation[] {
  return Object.entries(document.paths).flatMap(([path, operations]) =>
    Object.entries(operations).flatMap(([verb, operation]) => {
      const method = verb.toUpperCase() as Operation["method"];
      const slots = [...path.matchAll(/([^/]+)\/\{([^}]+)\}/g)].map((match) => `${match[1]}/{${match[2]}}`);
      if (!METHODS.has(method) || slots.length === 0) return [];
      const parameters = operation.parameters ?? [];
      return [
        {
          method,
          path,
          slots,
          requiredQuery: parameters.filter((p) => p.in === "query" && p.required).map((p) => p.name),
          hasBody: operation.requestBody !== undefined,
          name: `${method} ${path}`,
        },
      ];
    }),
  );
}

/** The operation's path with each parameter replaced by `fill(slot)`, URL-encoded. */
export function pathWith(operation: Operation, fill: (slot: string) => string): string {
  return operation.slots.reduce((path, slot) => {
    const parameter = slot.slice(slot.indexOf("/{") + 1);
    return path.replace(parameter, encodeURIComponent(fill(slot)));
  }, operation.path);
}

import jsonata from "jsonata";
import Type, { type Static, type TSchema } from "typebox";
import { Compile } from "typebox/compile";
import { HEADER_NAME_PATTERN } from "../agents/config-schema.js";
import { httpUrlProblem } from "../agents/http-url.js";
import type { FieldError } from "../errors.js";
import { type SchemaError, toFieldErrors } from "../http/field-errors.js";

/** The entry and exit pseudo-nodes edges may name (LangGraph's START and END). */
export const START_NODE = "__start__";
export const END_NODE = "__end__";
export const DEFAULT_MAX_STEPS = 50;
export const DEFAULT_TIMEOUT_SECONDS = 300;

const NODE_ID_PATTERN = "^[A-Za-z_][A-Za-z0-9_-]{0,63}$";
/** `input` is the state key of the job's input; the others are LangGraph's own names. */
const RESERVED_IDS = new Set(["input", START_NODE, END_NODE]);

const NodeId = Type.String({ pattern: NODE_ID_PATTERN, description: "Unique within the graph" });
const Expression = (description: string) =>
  Type.String({ minLength: 1, maxLength: 20_000, description: `JSONata: ${description}` });

export const TransformNode = Type.Object(
  {
    id: NodeId,
    type: Type.Literal("transform"),
    expression: Expression("evaluated over the state; its value is the node's output"),
  },
  { additionalProperties: false },
);

export const HttpNode = Type.Object(
  {
    id: NodeId,
    type: Type.Literal("http"),
    url: Type.String({ minLength: 1, maxLength: 2048 }),
    method: Type.Optional(Type.Enum(["GET", "POST", "PUT", "PATCH", "DELETE"])),
    headers: Type.Optional(
      Type.Record(
        Type.String({ pattern: HEADER_NAME_PATTERN }),
        Type.String({ pattern: "^[^\\r\\n]*$", maxLength: 8192 }),
        { additionalProperties: false, maxProperties: 50 },
      ),
    ),
    body: Type.Optional(Expression("gives the JSON request body")),
  },
  { additionalProperties: false },
);

export const LlmNode = Type.Object(
  {
    id: NodeId,
    type: Type.Literal("llm"),
    model: Type.String({ minLength: 1, maxLength: 200 }),
    prompt: Expression("gives the user message (a string) or an array of {role, content}"),
    system: Type.Optional(Type.String({ maxLength: 100_000 })),
    base_url: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
    api_key_env: Type.Optional(
      Type.String({
        pattern: "^[A-Z_][A-Z0-9_]{0,127}$",
        description: "NAME of the environment variable holding the API key, never the key",
      }),
    ),
    temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2 })),
    max_tokens: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  },
  { additionalProperties: false },
);

export const ExternalAgentNode = Type.Object(
  {
    id: NodeId,
    type: Type.Literal("external_agent"),
    agent_id: Type.String({ minLength: 1, maxLength: 128 }),
    input: Type.Optional(Expression("gives the payload (default: the job's input)")),
  },
  { additionalProperties: false },
);

export const GraphNode = Type.Union([TransformNode, HttpNode, LlmNode, ExternalAgentNode]);

export const GraphEdge = Type.Object(
  {
    from: Type.String({ minLength: 1, maxLength: 64, description: `A node id or ${START_NODE}` }),
    to: Type.String({ minLength: 1, maxLength: 64, description: `A node id or ${END_NODE}` }),
    when: Type.Optional(Expression("the edge is taken when this is truthy over the state")),
  },
  { additionalProperties: false },
);

export const GraphLimits = Type.Object(
  {
    max_steps: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: DEFAULT_MAX_STEPS })),
    timeout_seconds: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 86_400, default: DEFAULT_TIMEOUT_SECONDS }),
    ),
  },
  { additionalProperties: false },
);

/** A declarative agent graph: nodes, edges between them, and limits on a run. */
export const GraphDefinition = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    nodes: Type.Array(GraphNode, { minItems: 1, maxItems: 200 }),
    edges: Type.Array(GraphEdge, { minItems: 1, maxItems: 1000 }),
    limits: Type.Optional(GraphLimits),
  },
  { additionalProperties: false, title: "GraphDefinition" },
);

export type TransformNode = Static<typeof TransformNode>;
export type HttpNode = Static<typeof HttpNode>;
export type LlmNode = Static<typeof LlmNode>;
export type ExternalAgentNode = Static<typeof ExternalAgentNode>;
export type GraphNode = Static<typeof GraphNode>;
export type GraphEdge = Static<typeof GraphEdge>;
export type GraphDefinition = Static<typeof GraphDefinition>;

/** The graph definition as a plain JSON Schema object, for the API description and docs. */
export const GRAPH_DEFINITION_JSON_SCHEMA: Record<string, unknown> = JSON.parse(
  JSON.stringify(GraphDefinition),
);

/** A definition's limits with the defaults filled in. */
export function graphLimits(definition: GraphDefinition): { max_steps: number; timeout_seconds: number } {
  return {
    max_steps: definition.limits?.max_steps ?? DEFAULT_MAX_STEPS,
    timeout_seconds: definition.limits?.timeout_seconds ?? DEFAULT_TIMEOUT_SECONDS,
  };
}

/** The graph hit its own limits; running it again cannot help. */
export class GraphLimitError extends Error {
  override name = "GraphLimitError";
  constructor(
    readonly limit: "max_steps" | "timeout_seconds",
    message: string,
  ) {
    super(message);
  }
}

/** Published examples: each definition with an input it accepts. */
export const GRAPH_EXAMPLES: ReadonlyArray<{
  name: string;
  summary: string;
  definition: GraphDefinition;
  input: unknown;
}> = [
  {
    name: "shout",
    summary: "One transform node: upper-cases the input text",
    definition: {
      name: "shout",
      nodes: [{ id: "up", type: "transform", expression: "{'text': $uppercase(input.text)}" }],
      edges: [
        { from: START_NODE, to: "up" },
        { from: "up", to: END_NODE },
      ],
    },
    input: { text: "hi" },
  },
  {
    name: "triage",
    summary: "A conditional edge: large orders go to a review agent, the rest are accepted",
    definition: {
      name: "triage",
      nodes: [
        { id: "score", type: "transform", expression: "{'total': $sum(input.items.price)}" },
        { id: "review", type: "external_agent", agent_id: "agt_reviewer", input: "{'total': score.total}" },
        { id: "accept", type: "transform", expression: "{'accepted': true, 'total': score.total}" },
      ],
      edges: [
        { from: START_NODE, to: "score" },
        { from: "score", to: "review", when: "score.total > 1000" },
        { from: "score", to: "accept" },
        { from: "review", to: END_NODE },
        { from: "accept", to: END_NODE },
      ],
      limits: { max_steps: 10, timeout_seconds: 120 },
    },
    input: { items: [{ price: 400 }, { price: 250 }] },
  },
  {
    name: "summarize",
    summary: "An llm node summarises the text; the key is read from OPENAI_API_KEY",
    definition: {
      name: "summarize",
      nodes: [
        {
          id: "summary",
          type: "llm",
          model: "gpt-4o-mini",
          system: "You summarise text in one sentence.",
          prompt: "'Summarise: ' & input.text",
          api_key_env: "OPENAI_API_KEY",
          temperature: 0,
          max_tokens: 200,
        },
      ],
      edges: [
        { from: START_NODE, to: "summary" },
        { from: "summary", to: END_NODE },
      ],
    },
    input: { text: "Steward runs declarative agent graphs as jobs." },
  },
];

// Validating against the union itself reports every variant's mismatches; instead the
// outline is checked first, then each node against the variant its `type` names.
const NodeOutline = Type.Object({ type: Type.String() });
const DefinitionOutline = Type.Object(
  { ...GraphDefinition.properties, nodes: Type.Array(NodeOutline, { minItems: 1, maxItems: 200 }) },
  { additionalProperties: false },
);
const checkDefinition = Compile(GraphDefinition);
const checkOutline = Compile(DefinitionOutline);
const NODE_SCHEMAS: Record<GraphNode["type"], TSchema> = {
  transform: TransformNode,
  http: HttpNode,
  llm: LlmNode,
  external_agent: ExternalAgentNode,
};
const checkNode = Object.fromEntries(
  Object.entries(NODE_SCHEMAS).map(([type, schema]) => [type, Compile(schema)]),
) as Record<GraphNode["type"], ReturnType<typeof Compile>>;

/** The fields of each node kind holding JSONata. */
const EXPRESSION_FIELDS: Record<GraphNode["type"], readonly string[]> = {
  transform: ["expression"],
  http: ["body"],
  llm: ["prompt"],
  external_agent: ["input"],
};

const knownProblems = new Map<string, string | null>();

/** Why a JSONata expression does not compile, or null when it does. */
export function jsonataProblem(expression: string): string | null {
  const known = knownProblems.get(expression);
  if (known !== undefined) return known;
  let problem: string | null = null;
  try {
    jsonata(expression);
  } catch (error) {
    const { message, position } = error as { message?: string; position?: number };
    problem = `is not valid JSONata: ${message ?? String(error)}${position === undefined ? "" : ` (at ${position})`}`;
  }
  // Every job of a graph carries the same expressions: parse each once, in a bounded cache.
  if (knownProblems.size >= 1_000) knownProblems.clear();
  knownProblems.set(expression, problem);
  return problem;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Everything wrong with a graph definition, field by field (empty when it can run). */
export function graphDefinitionErrors(definition: unknown, prefix = "agent_definition"): FieldError[] {
  if (checkDefinition.Check(definition)) return graphRuleErrors(definition, prefix);
  const errors = toFieldErrors(checkOutline.Errors(definition) as SchemaError[], prefix);
  const nodes = isRecord(definition) && Array.isArray(definition.nodes) ? definition.nodes : [];
  nodes.forEach((node, index) => {
    if (!isRecord(node) || typeof node.type !== "string") return; // the outline named it
    const at = `${prefix}.nodes[${index}]`;
    const check = Object.hasOwn(checkNode, node.type) ? checkNode[node.type as GraphNode["type"]] : undefined;
    if (!check)
      errors.push({ field: `${at}.type`, message: `must be one of ${Object.keys(NODE_SCHEMAS).join(", ")}` });
    else if (!check.Check(node)) errors.push(...toFieldErrors(check.Errors(node) as SchemaError[], at));
  });
  // The graph rules still help when only a detail is wrong; they need the outline's shape.
  return checkOutline.Check(definition)
    ? [...errors, ...graphRuleErrors(definition as GraphDefinition, prefix)]
    : errors;
}

/** The rules a schema cannot state: ids, edges, reachability and the JSONata in the definition. */
function graphRuleErrors(definition: GraphDefinition, prefix: string): FieldError[] {
  const errors: FieldError[] = [];
  const add = (field: string, message: string) => errors.push({ field: `${prefix}.${field}`, message });
  const firstIndex = new Map<string, number>();
  definition.nodes.forEach((node, index) => {
    if (typeof node.id !== "string") return;
    if (RESERVED_IDS.has(node.id)) add(`nodes[${index}].id`, `"${node.id}" is reserved`);
    // LangGraph names its own channels and nodes __like_this__; keep node ids clear of them.
    else if (node.id.startsWith("__")) add(`nodes[${index}].id`, 'must not start with "__" (reserved)');
    const earlier = firstIndex.get(node.id);
    if (earlier !== undefined) add(`nodes[${index}].id`, `duplicates nodes[${earlier}].id "${node.id}"`);
    else firstIndex.set(node.id, index);
    const fields = Object.hasOwn(EXPRESSION_FIELDS, node.type) ? EXPRESSION_FIELDS[node.type] : [];
    for (const field of fields) {
      const expression = (node as Record<string, unknown>)[field];
      const problem = typeof expression === "string" ? jsonataProblem(expression) : null;
      if (problem) add(`nodes[${index}].${field}`, problem);
    }
    const url = node.type === "http" ? node.url : node.type === "llm" ? node.base_url : undefined;
    const urlProblem = typeof url === "string" ? httpUrlProblem(url) : null;
    if (urlProblem) add(`nodes[${index}].${node.type === "http" ? "url" : "base_url"}`, urlProblem);
  });

  const outgoing = new Map<string, string[]>();
  const fallback = new Map<string, number>();
  definition.edges.forEach((edge, index) => {
    if (edge.from === END_NODE) add(`edges[${index}].from`, `${END_NODE} has no outgoing edges`);
    else if (edge.from !== START_NODE && !firstIndex.has(edge.from))
      add(`edges[${index}].from`, `"${edge.from}" is not a node`);
    if (edge.to === START_NODE) add(`edges[${index}].to`, `no edge may lead to ${START_NODE}`);
    else if (edge.to !== END_NODE && !firstIndex.has(edge.to))
      add(`edges[${index}].to`, `"${edge.to}" is not a node`);
    else if (edge.from === START_NODE && edge.to === END_NODE)
      add(`edges[${index}].to`, "the first edge must lead to a node");
    if (edge.when !== undefined) {
      const problem = jsonataProblem(edge.when);
      if (problem) add(`edges[${index}].when`, problem);
    } else {
      // A run follows one edge at a time (no fan-out), so a second edge without `when`
      // would never be taken; refusing it beats silently ignoring it.
      const earlier = fallback.get(edge.from);
      if (earlier !== undefined)
        add(
          `edges[${index}]`,
          `edges[${earlier}] already leaves "${edge.from}" without a condition; add a "when"`,
        );
      else fallback.set(edge.from, index);
    }
    outgoing.set(edge.from, [...(outgoing.get(edge.from) ?? []), edge.to]);
  });

  if (!outgoing.has(START_NODE)) add("edges", `needs an edge from ${START_NODE}`);
  const reached = new Set<string>([START_NODE]);
  const queue = [START_NODE];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    for (const to of outgoing.get(next) ?? []) {
      if (!reached.has(to)) {
        reached.add(to);
        queue.push(to);
      }
    }
  }
  for (const [id, index] of firstIndex) {
    if (!outgoing.has(id))
      add(`nodes[${index}]`, `"${id}" has no outgoing edge (lead it to ${END_NODE} when it is last)`);
    if (outgoing.has(START_NODE) && !reached.has(id))
      add(`nodes[${index}]`, `"${id}" is not reachable from ${START_NODE}`);
  }
  return errors;
}

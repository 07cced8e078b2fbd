import { describe, expect, it } from "vitest";
import {
  GRAPH_DEFINITION_JSON_SCHEMA,
  GRAPH_EXAMPLES,
  graphDefinitionErrors,
  graphLimits,
} from "../../src/executor/graph-definition.js";

const shout = () => ({
  name: "shout",
  nodes: [{ id: "up", type: "transform", expression: "{'text': $uppercase(input.text)}" }] as Record<
    string,
    unknown
  >[],
  edges: [
    { from: "__start__", to: "up" },
    { from: "up", to: "__end__" },
  ] as Record<string, unknown>[],
});

/** The fields named by the errors of `definition`. */
const fields = (definition: unknown) => graphDefinitionErrors(definition).map((error) => error.field);

describe("graphDefinitionErrors", () => {
  it("accepts the shout example", () => {
    expect(graphDefinitionErrors(shout())).toEqual([]);
  });

  it("accepts every published example", () => {
    expect(GRAPH_EXAMPLES.map((example) => example.name)).toEqual(["shout", "triage", "summarize"]);
    for (const example of GRAPH_EXAMPLES) expect(graphDefinitionErrors(example.definition)).toEqual([]);
    expect(GRAPH_EXAMPLES.some((e) => e.definition.edges.some((edge) => edge.when))).toBe(true);
    expect(GRAPH_EXAMPLES.some((e) => e.definition.nodes.some((node) => node.type === "llm"))).toBe(true);
  });

  it("uses the prefix it is given", () => {
    const definition = { ...shout(), nodes: [{ id: "up", type: "transform" }] };
    expect(graphDefinitionErrors(definition, "job").map((e) => e.field)).toContain("job.nodes[0].expression");
  });

  describe("schema", () => {
    it("names a missing field of a node by the node's own kind", () => {
      const definition = shout();
      definition.nodes = [{ id: "up", type: "transform" }];
      expect(graphDefinitionErrors(definition)).toEqual([
        { field: "agent_definition.nodes[0].expression", message: "is required" },
      ]);
    });

    it("refuses an unknown node type", () => {
      const definition = shout();
      definition.nodes = [{ id: "up", type: "shell", command: "rm -rf /" }];
      expect(fields(definition)).toEqual(["agent_definition.nodes[0].type"]);
    });

    it("refuses an id that does not match the pattern", () => {
      const definition = shout();
      definition.nodes[0] = { ...definition.nodes[0], id: "9up" };
      expect(fields(definition)).toContain("agent_definition.nodes[0].id");
    });

    it("refuses unknown properties and a missing name", () => {
      const { name: _, ...definition } = { ...shout(), extra: 1 };
      definition.nodes[0] = { ...definition.nodes[0], expresion: "x" };
      expect(fields(definition)).toEqual(
        expect.arrayContaining([
          "agent_definition.name",
          "agent_definition.extra",
          "agent_definition.nodes[0].expresion",
        ]),
      );
    });

    it("checks the fields of http and llm nodes", () => {
      const definition = shout();
      definition.nodes = [
        { id: "call", type: "http", url: "ftp://example.com", method: "TRACE", headers: { "Bad Name": "x" } },
        { id: "ask", type: "llm", model: "m", prompt: "'hi'", api_key_env: "sk-live-1234", temperature: 3 },
      ];
      definition.edges = [
        { from: "__start__", to: "call" },
        { from: "call", to: "ask" },
        { from: "ask", to: "__end__" },
      ];
      expect(fields(definition)).toEqual(
        expect.arrayContaining([
          "agent_definition.nodes[0].method",
          "agent_definition.nodes[0].headers.Bad Name",
          "agent_definition.nodes[1].api_key_env",
          "agent_definition.nodes[1].temperature",
        ]),
      );
    });

    it("refuses a URL that is not http(s)", () => {
      const definition = shout();
      definition.nodes = [{ id: "call", type: "http", url: "ftp://example.com/x" }];
      definition.edges = [
        { from: "__start__", to: "call" },
        { from: "call", to: "__end__" },
      ];
      expect(graphDefinitionErrors(definition)).toEqual([
        { field: "agent_definition.nodes[0].url", message: "must use the http or https scheme" },
      ]);
    });

    it("bounds the limits", () => {
      const definition = { ...shout(), limits: { max_steps: 1001, timeout_seconds: 0 } };
      expect(fields(definition)).toEqual([
        "agent_definition.limits.max_steps",
        "agent_definition.limits.timeout_seconds",
      ]);
    });

    it("refuses what is not a definition at all", () => {
      expect(fields(null)).toEqual(["agent_definition"]);
      expect(fields({ name: "x", nodes: "up", edges: [] })).toEqual(
        expect.arrayContaining(["agent_definition.nodes", "agent_definition.edges"]),
      );
    });
  });

  describe("graph rules", () => {
    it.each(["input", "__start__", "__end__", "__pregel_tasks"])("refuses the reserved id %s", (id) => {
      const definition = shout();
      definition.nodes[0] = { ...definition.nodes[0], id };
      definition.edges = [
        { from: "__start__", to: id },
        { from: id, to: "__end__" },
      ];
      expect(fields(definition)).toContain("agent_definition.nodes[0].id");
    });

    it("refuses duplicate node ids", () => {
      const definition = shout();
      definition.nodes.push({ id: "up", type: "transform", expression: "1" });
      expect(graphDefinitionErrors(definition)).toEqual([
        { field: "agent_definition.nodes[1].id", message: 'duplicates nodes[0].id "up"' },
      ]);
    });

    it("refuses edges naming unknown nodes", () => {
      const definition = shout();
      definition.edges.push({ from: "ghost", to: "up" }, { from: "up", to: "nowhere", when: "true" });
      expect(fields(definition)).toEqual(["agent_definition.edges[2].from", "agent_definition.edges[3].to"]);
    });

    it("refuses edges into __start__ or out of __end__", () => {
      const definition = shout();
      definition.edges.push({ from: "up", to: "__start__", when: "false" }, { from: "__end__", to: "up" });
      expect(fields(definition)).toEqual(["agent_definition.edges[2].to", "agent_definition.edges[3].from"]);
    });

    it("needs an edge from __start__", () => {
      const definition = shout();
      definition.edges = [{ from: "up", to: "__end__" }];
      expect(graphDefinitionErrors(definition)).toEqual([
        { field: "agent_definition.edges", message: "needs an edge from __start__" },
      ]);
    });

    it("refuses a node without an outgoing edge", () => {
      const definition = shout();
      definition.edges = [{ from: "__start__", to: "up" }];
      expect(graphDefinitionErrors(definition)).toEqual([
        {
          field: "agent_definition.nodes[0]",
          message: '"up" has no outgoing edge (lead it to __end__ when it is last)',
        },
      ]);
    });

    it("refuses a node unreachable from __start__", () => {
      const definition = shout();
      definition.nodes.push({ id: "island", type: "transform", expression: "1" });
      definition.edges.push({ from: "island", to: "__end__" });
      expect(graphDefinitionErrors(definition)).toEqual([
        { field: "agent_definition.nodes[1]", message: '"island" is not reachable from __start__' },
      ]);
    });

    it("refuses a second edge without a condition from the same node", () => {
      const definition = shout();
      definition.nodes.push({ id: "other", type: "transform", expression: "1" });
      definition.edges.push({ from: "up", to: "other" }, { from: "other", to: "__end__" });
      expect(fields(definition)).toEqual(["agent_definition.edges[2]"]);
    });

    it.each([
      ["transform", { expression: "$uppercase(" }, "expression"],
      ["http", { url: "https://example.com", body: "{'a': }" }, "body"],
      ["llm", { model: "m", prompt: "'unterminated" }, "prompt"],
      ["external_agent", { agent_id: "agt_x", input: "[1, 2" }, "input"],
    ])("refuses JSONata that does not compile in a %s node", (type, fieldsOfNode, field) => {
      const definition = shout();
      definition.nodes = [{ id: "up", type, ...fieldsOfNode }];
      const errors = graphDefinitionErrors(definition);
      expect(errors.map((error) => error.field)).toEqual([`agent_definition.nodes[0].${field}`]);
      expect(errors[0]?.message).toMatch(/^is not valid JSONata: .+ \(at \d+\)$/);
    });

    it("refuses a condition that does not compile", () => {
      const definition = shout();
      definition.edges[1] = { from: "up", to: "__end__", when: "input.text =" };
      expect(fields(definition)).toEqual(["agent_definition.edges[1].when"]);
    });
  });
});

describe("graphLimits", () => {
  it("fills in the defaults", () => {
    const definition = GRAPH_EXAMPLES[0]?.definition;
    if (!definition) throw new Error("no example");
    expect(graphLimits(definition)).toEqual({ max_steps: 50, timeout_seconds: 300 });
    expect(graphLimits({ ...definition, limits: { max_steps: 3 } })).toEqual({
      max_steps: 3,
      timeout_seconds: 300,
    });
  });
});

describe("GRAPH_DEFINITION_JSON_SCHEMA", () => {
  it("is plain JSON describing every node kind", () => {
    expect(JSON.parse(JSON.stringify(GRAPH_DEFINITION_JSON_SCHEMA))).toEqual(GRAPH_DEFINITION_JSON_SCHEMA);
    const nodes = (GRAPH_DEFINITION_JSON_SCHEMA.properties as Record<string, { items: { anyOf: unknown[] } }>)
      .nodes;
    expect(nodes?.items.anyOf).toHaveLength(4);
  });
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type ConfigLayers,
  type ConfigSource,
  configDiff,
  configSchemaErrors,
  effectiveConfig,
  environmentConfig,
} from "../../src/lifecycle/agent-config.js";

const EMPTY: ConfigLayers = { defaults: {}, environment: {}, stored: {}, overrides: {} };
const LAYERS: Array<[keyof ConfigLayers, ConfigSource]> = [
  ["defaults", "default"],
  ["environment", "environment"],
  ["stored", "stored"],
  ["overrides", "override"],
];

describe("effectiveConfig", () => {
  const pairs = LAYERS.flatMap((weaker, i) => LAYERS.slice(i + 1).map((stronger) => [weaker, stronger]));

  it.each(pairs)("%j loses to %j", ([weakLayer], [strongLayer, strongSource]) => {
    const layers = {
      ...EMPTY,
      [weakLayer]: { batch_size: 1, kept: "weak" },
      [strongLayer]: { batch_size: 2 },
    };
    const { config, sources } = effectiveConfig(layers);
    expect(config).toEqual({ batch_size: 2, kept: "weak" });
    expect(sources.batch_size).toBe(strongSource);
  });

  it("names the layer of every key", () => {
    const { config, sources } = effectiveConfig({
      defaults: { a: 1, b: 1, c: 1, d: 1 },
      environment: { b: 2, c: 2, d: 2 },
      stored: { c: 3, d: 3 },
      overrides: { d: 4 },
    });
    expect(config).toEqual({ a: 1, b: 2, c: 3, d: 4 });
    expect(sources).toEqual({ a: "default", b: "environment", c: "stored", d: "override" });
  });

  it("replaces nested objects whole rather than merging them", () => {
    const { config } = effectiveConfig({
      ...EMPTY,
      defaults: { db: { host: "a", port: 1 } },
      stored: { db: { host: "b" } },
    });
    expect(config).toEqual({ db: { host: "b" } });
  });

  it("keeps a '__proto__' key as data, never as the prototype", () => {
    const stored = JSON.parse('{"__proto__": {"polluted": true}}') as Record<string, unknown>;
    const { config, sources } = effectiveConfig({ ...EMPTY, stored });
    expect(Object.hasOwn(config, "__proto__")).toBe(true);
    expect(Object.getPrototypeOf(config)).toBe(Object.prototype);
    expect((config as { polluted?: unknown }).polluted).toBeUndefined();
    expect(Object.hasOwn(sources, "__proto__")).toBe(true);
  });

  it("equals Object.assign of the layers, each key from the last layer holding it", () => {
    // Few key names, so layers overlap often.
    const layer = fc.dictionary(fc.constantFrom("a", "b", "c", "d", "e"), fc.jsonValue());
    fc.assert(
      fc.property(layer, layer, layer, layer, (defaults, environment, stored, overrides) => {
        const layers = { defaults, environment, stored, overrides };
        const { config, sources } = effectiveConfig(layers);
        expect(config).toEqual(Object.assign({}, defaults, environment, stored, overrides));
        expect(Object.keys(sources).sort()).toEqual(Object.keys(config).sort());
        for (const key of Object.keys(config)) {
          const last = LAYERS.filter(([name]) => Object.hasOwn(layers[name], key)).at(-1);
          expect(sources[key]).toBe(last?.[1]);
        }
      }),
    );
  });
});

describe("environmentConfig", () => {
  it("reads STEWARD_AGENT_<NAME>_<KEY> with the name upper-cased and punctuation as '_'", () => {
    const variables = { STEWARD_AGENT_LOG_SENTINEL_BATCH_SIZE: "50" };
    expect(environmentConfig("log-sentinel", variables)).toEqual({ batch_size: 50 });
    expect(environmentConfig("Log.Sentinel", variables)).toEqual({ batch_size: 50 });
    expect(environmentConfig("log sentinel", variables)).toEqual({ batch_size: 50 });
  });

  it("ignores another agent's variables", () => {
    const variables = {
      STEWARD_AGENT_OTHER_BATCH_SIZE: "7",
      STEWARD_AGENT_LOG_SENTINELS_BATCH_SIZE: "8",
      STEWARD_AGENT_LOG_SENTINEL_MODE: "fast",
    };
    expect(environmentConfig("log-sentinel", variables)).toEqual({ mode: "fast" });
  });

  it("ignores a variable with the prefix but no key", () => {
    expect(environmentConfig("log-sentinel", { STEWARD_AGENT_LOG_SENTINEL_: "1" })).toEqual({});
  });

  it("parses JSON values and keeps anything else as text", () => {
    const config = environmentConfig("a", {
      STEWARD_AGENT_A_COUNT: "12",
      STEWARD_AGENT_A_RATIO: "0.5",
      STEWARD_AGENT_A_ENABLED: "true",
      STEWARD_AGENT_A_LIMITS: '{"max": 3}',
      STEWARD_AGENT_A_HOSTS: '["x", "y"]',
      STEWARD_AGENT_A_NOTHING: "null",
      STEWARD_AGENT_A_NAME: "hello world",
      STEWARD_AGENT_A_BROKEN: "{not json",
    });
    expect(config).toEqual({
      count: 12,
      ratio: 0.5,
      enabled: true,
      limits: { max: 3 },
      hosts: ["x", "y"],
      nothing: null,
      name: "hello world",
      broken: "{not json",
    });
  });

  it("keeps the raw text of a property the schema declares a string", () => {
    const schema = {
      type: "object",
      properties: {
        pattern: { type: "string" },
        label: { type: ["string", "null"] },
        threshold: { type: "number" },
      },
    };
    const config = environmentConfig(
      "log-sentinel",
      {
        STEWARD_AGENT_LOG_SENTINEL_PATTERN: "404",
        STEWARD_AGENT_LOG_SENTINEL_LABEL: "true",
        STEWARD_AGENT_LOG_SENTINEL_THRESHOLD: "404",
      },
      schema,
    );
    expect(config).toEqual({ pattern: "404", label: "true", threshold: 404 });
  });

  it("parses as usual when there is no schema or the key is not in it", () => {
    const variables = { STEWARD_AGENT_LOG_SENTINEL_PATTERN: "404" };
    expect(environmentConfig("log-sentinel", variables, null)).toEqual({ pattern: 404 });
    expect(environmentConfig("log-sentinel", variables, { type: "object" })).toEqual({ pattern: 404 });
  });
});

describe("configDiff", () => {
  it("is empty for equal configurations, nested ones compared by value", () => {
    const config = { a: 1, nested: { list: [1, { b: 2 }] } };
    expect(configDiff(config, structuredClone(config))).toEqual({ added: {}, removed: [], changed: {} });
  });

  it("reports added, removed and changed keys", () => {
    expect(configDiff({ keep: 1, gone: "x", edit: 1 }, { keep: 1, edit: 2, fresh: [1] })).toEqual({
      added: { fresh: [1] },
      removed: ["gone"],
      changed: { edit: { from: 1, to: 2 } },
    });
  });

  it("reports a nested change as a change of its top-level key", () => {
    const before = { db: { host: "a", ports: [1, 2] } };
    const after = { db: { host: "a", ports: [1, 3] } };
    expect(configDiff(before, after)).toEqual({
      added: {},
      removed: [],
      changed: { db: { from: before.db, to: after.db } },
    });
  });

  it("treats a key set to null as changed, not removed", () => {
    expect(configDiff({ a: 1 }, { a: null })).toEqual({
      added: {},
      removed: [],
      changed: { a: { from: 1, to: null } },
    });
  });
});

describe("configSchemaErrors", () => {
  const schema = {
    type: "object",
    properties: {
      pattern: { type: "string" },
      batch_size: { type: "integer", minimum: 1 },
      hosts: { type: "array", items: { type: "string" } },
      output: { type: "object", properties: { format: { enum: ["json", "text"] } }, required: ["format"] },
    },
    required: ["pattern"],
    additionalProperties: false,
  };

  it("is empty without a schema", () => {
    expect(configSchemaErrors(null, { anything: true })).toEqual([]);
  });

  it("is empty for a valid configuration", () => {
    expect(configSchemaErrors(schema, { pattern: "x", batch_size: 5, output: { format: "json" } })).toEqual(
      [],
    );
  });

  it("names each failing field under config.", () => {
    const errors = configSchemaErrors(schema, { batch_size: 0, hosts: ["a", 2], output: {}, extra: 1 });
    expect(errors.map((error) => error.field).sort()).toEqual([
      "config.batch_size",
      "config.extra",
      "config.hosts[1]",
      "config.output.format",
      "config.pattern",
    ]);
    expect(errors).toContainEqual({ field: "config.pattern", message: "is required" });
    expect(errors).toContainEqual({ field: "config.extra", message: "is not allowed" });
    expect(errors.find((error) => error.field === "config.batch_size")?.message).toMatch(/1/);
  });

  it("answers the same on a second call with the same schema object", () => {
    const first = configSchemaErrors(schema, { pattern: 1 });
    expect(first).toEqual([{ field: "config.pattern", message: expect.stringMatching(/string|type/) }]);
    expect(configSchemaErrors(schema, { pattern: 1 })).toEqual(first);
    expect(configSchemaErrors(schema, { pattern: "ok" })).toEqual([]);
  });
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  AGENT_NAME_PATTERN,
  AGENT_TYPE_PATTERN,
  type AgentPackage,
  isPublishableSubject,
  isSubscribableSubject,
  type PackageProblem,
  parseAgentPackage,
} from "../../src/lifecycle/agent-package.js";

const DIRECTORY = "/srv/agents/log-watcher";
const ENV_FILE = `${DIRECTORY}/.env.discovery`;
const SCHEMA_FILE = `${DIRECTORY}/config.schema.json`;

/** The required fields of a valid package; tests override or drop one at a time. */
const REQUIRED: Record<string, string> = {
  AGENT_NAME: "log-watcher",
  AGENT_VERSION: "1.2.3",
  AGENT_DESCRIPTION: "Watches logs for anomalies",
  DEFAULT_SUBSCRIBED_TOPICS: "logs.raw",
  DEFAULT_FINDINGS_TOPIC: "findings.logs",
};

/** .env.discovery text from fields; `undefined` drops a field. */
function envText(fields: Record<string, string | undefined>): string {
  return Object.entries({ ...REQUIRED, ...fields })
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${value}`)
    .join("\n");
}

function parsed(fields: Record<string, string | undefined> = {}, schemaText?: string): AgentPackage {
  const result = parseAgentPackage({
    directory: DIRECTORY,
    envText: envText(fields),
    ...(schemaText === undefined ? {} : { schemaText }),
  });
  if (!result.ok) throw new Error(`expected a valid package, got: ${result.problem.reason}`);
  return result.package;
}

function problem(fields: Record<string, string | undefined>, schemaText?: string): PackageProblem {
  const result = parseAgentPackage({
    directory: DIRECTORY,
    envText: envText(fields),
    ...(schemaText === undefined ? {} : { schemaText }),
  });
  if (result.ok) throw new Error("expected the package to be refused");
  return result.problem;
}

describe("parseAgentPackage: a valid package", () => {
  it("reads every field of a full package", () => {
    const text = [
      "# Log watcher: flags anomalies in raw logs",
      "AGENT_NAME=log-watcher",
      "AGENT_VERSION=1.2.3-beta.1",
      'AGENT_DESCRIPTION="Watches logs for anomalies"',
      "AGENT_TYPE=log-analyzer",
      "AGENT_TAGS= logs , security,,  ",
      "DEFAULT_SUBSCRIBED_TOPICS=logs.raw, logs.*.error ,metrics.>",
      "DEFAULT_FINDINGS_TOPIC=findings.logs",
      "AGENT_COMMAND=node dist/main.js --verbose",
      "AGENT_HEARTBEAT_INTERVAL=15",
      "AGENT_RESOURCE_CPU=0.5",
      "AGENT_RESOURCE_MEMORY_MB=256",
      "SOMETHING_ELSE=ignored",
    ].join("\n");
    const schemaText = JSON.stringify({
      type: "object",
      properties: { threshold: { type: "number", default: 0.8 }, pattern: { type: "string" } },
    });
    const result = parseAgentPackage({ directory: DIRECTORY, envText: text, schemaText });
    expect(result).toEqual({
      ok: true,
      package: {
        name: "log-watcher",
        version: "1.2.3-beta.1",
        description: "Watches logs for anomalies",
        type: "log-analyzer",
        tags: ["logs", "security"],
        subscribedTopics: ["logs.raw", "logs.*.error", "metrics.>"],
        findingsTopic: "findings.logs",
        command: "node dist/main.js --verbose",
        heartbeatIntervalS: 15,
        resourceHints: { cpu: "0.5", memory_mb: "256" },
        configSchema: JSON.parse(schemaText),
        configDefaults: { threshold: 0.8 },
        directory: DIRECTORY,
        file: ENV_FILE,
      },
    });
  });

  it("applies the defaults of optional fields", () => {
    const pkg = parsed();
    expect(pkg).toMatchObject({
      type: "agent",
      tags: [],
      command: null,
      heartbeatIntervalS: 30,
      resourceHints: {},
      configSchema: null,
      configDefaults: {},
    });
  });

  it("resolves a relative directory to an absolute one", () => {
    const result = parseAgentPackage({ directory: "agents/x", envText: envText({}) });
    expect(result.ok && result.package.directory).toBe(`${process.cwd()}/agents/x`);
    expect(result.ok && result.package.file).toBe(`${process.cwd()}/agents/x/.env.discovery`);
  });
});

describe("parseAgentPackage: required fields", () => {
  it.each(Object.keys(REQUIRED))("refuses a package missing %s", (key) => {
    expect(problem({ [key]: undefined })).toEqual({
      file: ENV_FILE,
      reason: `missing required field ${key}`,
    });
  });

  it.each(Object.keys(REQUIRED))("treats an empty %s as missing", (key) => {
    expect(problem({ [key]: "  " }).reason).toBe(`missing required field ${key}`);
  });

  it("names every missing field in one reason", () => {
    expect(problem({ AGENT_VERSION: undefined, DEFAULT_FINDINGS_TOPIC: undefined })).toEqual({
      file: ENV_FILE,
      reason: "missing required fields AGENT_VERSION, DEFAULT_FINDINGS_TOPIC",
    });
  });

  it("reports every problem of the file at once", () => {
    expect(problem({ AGENT_NAME: undefined, AGENT_VERSION: "1.x", AGENT_TYPE: "Bad" }).reason).toBe(
      [
        "missing required field AGENT_NAME",
        'AGENT_VERSION "1.x" is not a semantic version',
        'AGENT_TYPE "Bad" is not a valid type (lower-case letters, digits and "-", starting with a letter, at most 32 characters)',
      ].join("; "),
    );
  });
});

describe("parseAgentPackage: AGENT_NAME and AGENT_VERSION", () => {
  it.each(["a", "log_watcher-2", "0day", "a".repeat(63)])("accepts the name %s", (name) => {
    expect(parsed({ AGENT_NAME: name }).name).toBe(name);
  });

  it.each(["Log", "-x", "_x", "a b", "a.b", "a".repeat(64)])("refuses the name %s", (name) => {
    expect(problem({ AGENT_NAME: name }).reason).toMatch(/^AGENT_NAME ".*" is not a valid name/);
  });

  it.each(["1.x", "1.0", "latest", "1.0.0.0"])("refuses the version %s", (version) => {
    expect(problem({ AGENT_VERSION: version })).toEqual({
      file: ENV_FILE,
      reason: `AGENT_VERSION "${version}" is not a semantic version`,
    });
  });

  // Build metadata is dropped too: it does not count in semver precedence, so it cannot tell versions apart.
  it.each([
    ["v1.0.0", "1.0.0"],
    ["2.3.4+build.5", "2.3.4"],
  ])(
    "refuses the version %s, valid only after normalizing, and says how to write it",
    (version, normalized) => {
      expect(problem({ AGENT_VERSION: version }).reason).toBe(
        `AGENT_VERSION "${version}" is not a semantic version (write it as "${normalized}")`,
      );
    },
  );

  it.each(["0.0.1", "1.0.0-rc.1", "10.20.30"])("accepts the version %s", (version) => {
    expect(parsed({ AGENT_VERSION: version }).version).toBe(version);
  });
});

describe("parseAgentPackage: NATS subjects", () => {
  it.each(["logs..raw", "a.>.b", "a b", "foo*", ".logs", "logs.", "logs.>x", "a\tb"])(
    "refuses the subscription subject %j",
    (subject) => {
      expect(problem({ DEFAULT_SUBSCRIBED_TOPICS: `logs.raw,${subject}` })).toEqual({
        file: ENV_FILE,
        reason: `DEFAULT_SUBSCRIBED_TOPICS: "${subject}" is not a valid NATS subject`,
      });
    },
  );

  it("refuses a subscription list without any subject", () => {
    expect(problem({ DEFAULT_SUBSCRIBED_TOPICS: " , ," }).reason).toBe(
      "DEFAULT_SUBSCRIBED_TOPICS lists no subject",
    );
  });

  it("accepts wildcards in subscriptions and drops repeats", () => {
    expect(parsed({ DEFAULT_SUBSCRIBED_TOPICS: "*,a.*.c,a.>,>,a.*.c" }).subscribedTopics).toEqual([
      "*",
      "a.*.c",
      "a.>",
      ">",
    ]);
  });

  it.each(["findings.*", "findings.>", "*"])("refuses the wildcard findings topic %s", (subject) => {
    expect(problem({ DEFAULT_FINDINGS_TOPIC: subject })).toEqual({
      file: ENV_FILE,
      reason: `DEFAULT_FINDINGS_TOPIC: "${subject}" is not a valid NATS subject to publish to (wildcards "*" and ">" are not allowed)`,
    });
  });

  it.each(["a..b", "fin*dings", "a.b."])("refuses the malformed findings topic %s", (subject) => {
    expect(problem({ DEFAULT_FINDINGS_TOPIC: subject }).reason).toBe(
      `DEFAULT_FINDINGS_TOPIC: "${subject}" is not a valid NATS subject`,
    );
  });

  it("limits a subject to 255 characters", () => {
    const subject = `a.${"b".repeat(253)}`;
    expect(isPublishableSubject(subject)).toBe(true);
    expect(isPublishableSubject(`${subject}c`)).toBe(false);
    expect(isSubscribableSubject(`${subject}c`)).toBe(false);
  });

  it.each(["", " ", "a\u0000b", "a\u00a0b", "a\u007fb"])(
    "refuses whitespace and control characters: %j",
    (s) => {
      expect(isSubscribableSubject(s)).toBe(false);
      expect(isPublishableSubject(s)).toBe(false);
    },
  );

  const token = fc.stringMatching(/^[a-z0-9_-]{1,8}$/);
  const tokens = fc.array(token, { minLength: 1, maxLength: 5 });

  it("accepts any subject of plain tokens for both publishing and subscribing", () => {
    fc.assert(
      fc.property(tokens, (parts) => {
        const subject = parts.join(".");
        expect(isPublishableSubject(subject)).toBe(true);
        expect(isSubscribableSubject(subject)).toBe(true);
      }),
    );
  });

  it("refuses any subject with an empty token, for both", () => {
    fc.assert(
      fc.property(tokens, fc.nat(), (parts, at) => {
        const withEmpty = [...parts];
        withEmpty.splice(at % (parts.length + 1), 0, "");
        const subject = withEmpty.join(".");
        expect(isPublishableSubject(subject)).toBe(false);
        expect(isSubscribableSubject(subject)).toBe(false);
      }),
    );
  });
});

describe("parseAgentPackage: optional fields", () => {
  it.each(["worker", "log-analyzer", "a", `a${"b".repeat(31)}`])("accepts the type %s", (type) => {
    expect(parsed({ AGENT_TYPE: type }).type).toBe(type);
  });

  it.each(["Worker", "1x", "-x", "a_b", "", `a${"b".repeat(32)}`])("refuses the type %j", (type) => {
    expect(problem({ AGENT_TYPE: type }).reason).toBe(
      `AGENT_TYPE "${type}" is not a valid type (lower-case letters, digits and "-", starting with a letter, at most 32 characters)`,
    );
  });

  it("trims tags, drops empty ones and repeats", () => {
    expect(parsed({ AGENT_TAGS: " a ,, b,a , " }).tags).toEqual(["a", "b"]);
    expect(parsed({ AGENT_TAGS: "" }).tags).toEqual([]);
  });

  it("refuses a tag over 64 characters", () => {
    expect(parsed({ AGENT_TAGS: "x".repeat(64) }).tags).toEqual(["x".repeat(64)]);
    expect(problem({ AGENT_TAGS: `ok,${"x".repeat(65)}` }).reason).toBe(
      `AGENT_TAGS: tag "${"x".repeat(65)}" is longer than 64 characters`,
    );
  });

  it("keeps the command, and refuses an empty one", () => {
    expect(parsed({ AGENT_COMMAND: "python -m agent" }).command).toBe("python -m agent");
    expect(problem({ AGENT_COMMAND: " " }).reason).toBe("AGENT_COMMAND is empty");
  });

  it.each([
    ["1", 1],
    ["3600", 3600],
    ["60", 60],
  ])("accepts the heartbeat interval %s", (value, seconds) => {
    expect(parsed({ AGENT_HEARTBEAT_INTERVAL: value }).heartbeatIntervalS).toBe(seconds);
  });

  it.each(["0", "3601", "-5", "1.5", "30s", "", "1e3", "99999999999"])(
    "refuses the heartbeat interval %j",
    (value) => {
      expect(problem({ AGENT_HEARTBEAT_INTERVAL: value }).reason).toBe(
        `AGENT_HEARTBEAT_INTERVAL "${value}" is not a whole number of seconds between 1 and 3600`,
      );
    },
  );

  it("collects resource hints under lower-cased names, prototype-safe", () => {
    const hints = parsed({
      AGENT_RESOURCE_CPU: "0.5",
      AGENT_RESOURCE_GPU: "1",
      AGENT_RESOURCE___PROTO__: "x",
    }).resourceHints;
    expect(Object.getPrototypeOf(hints)).toBe(Object.prototype);
    expect(Object.entries(hints)).toEqual([
      ["cpu", "0.5"],
      ["gpu", "1"],
      ["__proto__", "x"],
    ]);
  });

  it("refuses an empty resource hint and two hints with the same name", () => {
    expect(problem({ AGENT_RESOURCE_CPU: "" }).reason).toBe("AGENT_RESOURCE_CPU is empty");
    expect(problem({ AGENT_RESOURCE_CPU: "1", AGENT_RESOURCE_cpu: "2" }).reason).toBe(
      'AGENT_RESOURCE_CPU and AGENT_RESOURCE_cpu both set resource hint "cpu"',
    );
  });
});

describe("parseAgentPackage: config.schema.json", () => {
  it.each([
    ["invalid JSON", "{ type: object", /^config\.schema\.json is not valid JSON: /],
    ["an array", "[]", /^config\.schema\.json must be a JSON Schema object$/],
    ["null", "null", /^config\.schema\.json must be a JSON Schema object$/],
    [
      "a non-object schema",
      '{"type":"string"}',
      /^config\.schema\.json must describe an object \(its "type" is "string"\)$/,
    ],
    ["non-object properties", '{"properties":[1]}', /^config\.schema\.json: "properties" must be an object$/],
    [
      "a schema that does not compile",
      '{"type":"object","properties":{"p":{"type":"string","pattern":"(("}}}',
      /^config\.schema\.json does not compile: /,
    ],
  ])("refuses %s, naming the schema file", (_, schemaText, reason) => {
    const refused = problem({}, schemaText);
    expect(refused.file).toBe(SCHEMA_FILE);
    expect(refused.reason).toMatch(reason);
  });

  it("reports the .env.discovery problem first when both files are wrong", () => {
    expect(problem({ AGENT_NAME: undefined }, "[]").file).toBe(ENV_FILE);
  });

  it("accepts a schema without a type", () => {
    expect(parsed({}, '{"properties":{"a":{"default":1}}}').configDefaults).toEqual({ a: 1 });
  });

  it("takes the defaults of top-level properties only, including falsy ones", () => {
    const schema = {
      type: "object",
      properties: {
        limit: { type: "integer", default: 0 },
        enabled: { type: "boolean", default: false },
        note: { type: ["string", "null"], default: null },
        nested: {
          type: "object",
          properties: { deep: { type: "string", default: "no" } },
          default: { deep: "yes" },
        },
        plain: { type: "string" },
      },
      required: ["plain"],
    };
    const pkg = parsed({}, JSON.stringify(schema));
    // Strict: a property without a default must not appear, not even as undefined.
    expect(pkg.configDefaults).toStrictEqual({
      limit: 0,
      enabled: false,
      note: null,
      nested: { deep: "yes" },
    });
    expect(pkg.configSchema).toEqual(schema);
  });

  it("copies defaults, so changing them leaves the schema alone", () => {
    const pkg = parsed({}, '{"properties":{"list":{"default":[1]}}}');
    (pkg.configDefaults.list as number[]).push(2);
    expect(pkg.configSchema).toEqual({ properties: { list: { default: [1] } } });
  });
});

describe("exported patterns", () => {
  it("are the documented slugs", () => {
    expect(AGENT_NAME_PATTERN.source).toBe("^[a-z0-9][a-z0-9_-]{0,62}$");
    expect(AGENT_TYPE_PATTERN.source).toBe("^[a-z][a-z0-9-]{0,31}$");
  });
});

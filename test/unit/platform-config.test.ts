import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PLATFORMS, type Platform } from "../../src/agents/agent-kinds.js";
import { validateConfig } from "../../src/agents/config-schema.js";
import { httpUrlProblem } from "../../src/agents/http-url.js";
import { PLATFORM_CONFIG_SPECS } from "../../src/agents/platform-config.js";

const validate = (platform: Platform, value: unknown) =>
  validateConfig(PLATFORM_CONFIG_SPECS[platform], value, "platform_config");

const fieldsOf = (platform: Platform, value: unknown) =>
  validate(platform, value).map((error) => error.field);

const VALID: Record<Platform, Record<string, unknown>> = {
  teams: {
    tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47",
    channel_id: "19:abc@thread.tacv2",
    webhook_url: "https://prod-01.westus.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=x",
  },
  discord: {
    webhook_url: "https://discord.com/api/webhooks/123/abcdef",
    username: "Steward",
    avatar_url: "https://cdn.example.com/steward.png",
  },
  slack: { webhook_url: "https://hooks.slack.com/services/T000/B000/XXXX", channel: "#agents" },
  telegram: { bot_token: "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11", chat_id: -1001234567890 },
  notion: { token: "secret_abcdefghijklmnop", database_id: "a8aec43384f447ed84390e8e42c2e089" },
  custom_http: {
    webhook_url: "https://results.example.com/hooks/steward",
    headers: { Authorization: "Bearer t", "X-Source": "steward" },
  },
  mattermost: {
    webhook_url: "https://chat.example.com/hooks/xa3fn8kd7pgq5b1c9tyrmwe4zh",
    channel: "town-square",
    username: "steward",
    icon_url: "https://cdn.example.com/steward.png",
  },
  a2a: { webhook_url: "https://results.example.com/hooks/a2a" },
};

const REQUIRED: Record<Platform, string[]> = {
  teams: ["tenant_id", "channel_id"],
  discord: ["webhook_url"],
  slack: ["webhook_url", "channel"],
  telegram: ["bot_token", "chat_id"],
  notion: ["token", "database_id"],
  custom_http: [],
  mattermost: ["webhook_url"],
  a2a: [],
};

function without(config: Record<string, unknown>, field: string): Record<string, unknown> {
  const copy = { ...config };
  delete copy[field];
  return copy;
}

describe("platform_config validation", () => {
  it("has a spec for every platform", () => {
    expect(Object.keys(PLATFORM_CONFIG_SPECS).sort()).toEqual([...PLATFORMS].sort());
  });

  describe("valid configs", () => {
    it.each(PLATFORMS)("accepts a complete %s config", (platform) => {
      expect(validate(platform, VALID[platform])).toEqual([]);
    });

    it.each([
      ["teams", { tenant_id: "t", channel_id: "c" }],
      ["discord", { webhook_url: "https://discord.com/api/webhooks/1/x" }],
      ["custom_http", {}],
      ["custom_http", { webhook_url: "http://10.0.0.5:8080/results" }],
      ["mattermost", { webhook_url: "https://chat.example.com/hooks/x" }],
    ] as const)("accepts a minimal %s config %j", (platform, config) => {
      expect(validate(platform, config)).toEqual([]);
    });
  });

  describe("missing required fields", () => {
    const cases = PLATFORMS.flatMap((platform) =>
      REQUIRED[platform].map((field) => [platform, field] as const),
    );

    it.each(cases)("%s without %s names platform_config.<field>", (platform, field) => {
      expect(validate(platform, without(VALID[platform], field))).toContainEqual({
        field: `platform_config.${field}`,
        message: "is required",
      });
    });
  });

  describe("unknown fields", () => {
    it.each(PLATFORMS)("%s refuses an unknown field and names it", (platform) => {
      expect(validate(platform, { ...VALID[platform], bot_name: "x" })).toEqual([
        { field: "platform_config.bot_name", message: "is not allowed" },
      ]);
    });
  });

  describe("wrong types and empty values", () => {
    it.each([
      ["teams", "tenant_id", ""],
      ["teams", "channel_id", 19],
      ["discord", "username", ""],
      ["discord", "username", "u".repeat(81)],
      ["slack", "channel", ""],
      ["slack", "webhook_url", 1],
      ["telegram", "bot_token", ""],
      ["notion", "database_id", ""],
      ["notion", "token", { value: "t" }],
      ["custom_http", "headers", "Authorization: Bearer t"],
      ["custom_http", "headers", { Authorization: "" }],
      ["mattermost", "webhook_url", ""],
      ["mattermost", "channel", ""],
      ["mattermost", "username", 7],
      ["mattermost", "icon_url", { url: "https://x" }],
    ] as const)("%s refuses %s = %j", (platform, field, value) => {
      const fields = fieldsOf(platform, { ...VALID[platform], [field]: value });
      const named = `platform_config.${field}`;
      expect(fields.length).toBeGreaterThan(0);
      expect(fields.every((f) => f === named || f.startsWith(`${named}.`))).toBe(true);
    });
  });

  describe("telegram chat_id", () => {
    it.each([-1001234567890, 42, 0, "@steward_results", "-1001234567890"])("accepts %j", (chatId) => {
      expect(validate("telegram", { ...VALID.telegram, chat_id: chatId })).toEqual([]);
    });

    it.each([1.5, "", true, null, ["@a"]])("refuses %j, naming platform_config.chat_id", (chatId) => {
      const fields = fieldsOf("telegram", { ...VALID.telegram, chat_id: chatId });
      expect(fields.length).toBeGreaterThan(0);
      expect(new Set(fields)).toEqual(new Set(["platform_config.chat_id"]));
    });

    it("accepts any integer chat id", () => {
      fc.assert(
        fc.property(fc.maxSafeInteger(), (chatId) => {
          expect(validate("telegram", { ...VALID.telegram, chat_id: chatId })).toEqual([]);
        }),
      );
    });
  });

  describe("URL fields", () => {
    const urlFields = [
      ["teams", "webhook_url"],
      ["discord", "webhook_url"],
      ["discord", "avatar_url"],
      ["slack", "webhook_url"],
      ["custom_http", "webhook_url"],
      ["mattermost", "webhook_url"],
      ["mattermost", "icon_url"],
    ] as const;

    it.each(urlFields)("%s refuses an ftp:// %s and names it", (platform, field) => {
      expect(validate(platform, { ...VALID[platform], [field]: "ftp://files.example.com/hook" })).toEqual([
        { field: `platform_config.${field}`, message: "must use the http or https scheme" },
      ]);
    });

    it.each(urlFields)("%s refuses a relative %s", (platform, field) => {
      expect(fieldsOf(platform, { ...VALID[platform], [field]: "/hooks/steward" })).toEqual([
        `platform_config.${field}`,
      ]);
    });

    it.each(urlFields)("%s refuses credentials embedded in %s", (platform, field) => {
      expect(fieldsOf(platform, { ...VALID[platform], [field]: "https://u:p@hooks.example.com/x" })).toEqual([
        `platform_config.${field}`,
      ]);
    });
  });

  describe("custom_http headers", () => {
    it("refuses more than 50 headers", () => {
      const headers = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`X-H${i}`, "v"]));
      expect(fieldsOf("custom_http", { headers })).toEqual(["platform_config.headers"]);
    });

    it("refuses a header name that is not an HTTP token", () => {
      expect(fieldsOf("custom_http", { headers: { "X-A\r\nX-B": "v" } })).toEqual([
        "platform_config.headers.X-A\r\nX-B",
      ]);
    });

    it.each([
      ["Host", "steward.example.com"],
      ["content-length", "12"],
      ["X-Token", "two\nlines"],
      ["X-Token", "caf\u20ac"],
    ])("refuses %s = %j, which no delivery could send", (name, value) => {
      const problems = validate("custom_http", { ...VALID.custom_http, headers: { [name]: value } });
      expect(problems.map((problem) => problem.field)).toEqual([`platform_config.headers.${name}`]);
      expect(JSON.stringify(problems)).not.toContain(value);
    });

    it("accepts Latin-1 text in a value", () => {
      expect(validate("custom_http", { ...VALID.custom_http, headers: { "X-Team": "caf\u00e9" } })).toEqual(
        [],
      );
    });
  });

  describe("values the platform is known to refuse", () => {
    it.each([
      ["discord", "username", "Discord alerts"],
      ["discord", "username", "CLYDE"],
      ["telegram", "bot_token", "not-a-token"],
      ["telegram", "bot_token", "123456:abc/../../getMe"],
      ["notion", "database_id", "https://www.notion.so/acme/a8aec43384f447ed84390e8e42c2e089"],
      ["notion", "database_id", "db-1"],
    ] as const)("%s refuses %s = %j, naming the field", (platform, field, value) => {
      expect(fieldsOf(platform, { ...VALID[platform], [field]: value })).toEqual([
        `platform_config.${field}`,
      ]);
    });

    it("accepts a Notion id with its hyphens", () => {
      const databaseId = "a8aec433-84f4-47ed-8439-0e8e42c2e089";
      expect(validate("notion", { ...VALID.notion, database_id: databaseId })).toEqual([]);
    });
  });

  describe("secret fields are the ones stored encrypted", () => {
    it.each([
      ["teams", ["webhook_url"]],
      ["discord", ["webhook_url"]],
      ["slack", ["webhook_url"]],
      ["telegram", ["bot_token"]],
      ["notion", ["token"]],
      ["custom_http", ["webhook_url", "headers.*"]],
      ["mattermost", ["webhook_url"]],
    ] as const)("%s seals %j", (platform, paths) => {
      expect([...PLATFORM_CONFIG_SPECS[platform].secretPaths]).toEqual(paths);
    });
  });
});

describe("httpUrlProblem", () => {
  it.each([
    "https://example.com",
    "http://localhost:8080/hooks?x=1#frag",
    "HTTPS://EXAMPLE.COM/UPPER",
    "https://[::1]:8443/",
    "http://192.168.1.10/hook",
    `https://example.com/${"a".repeat(2048 - "https://example.com/".length)}`,
  ])("accepts %s", (url) => {
    expect(httpUrlProblem(url)).toBeNull();
  });

  it.each([
    ["", "must be an absolute http or https URL"],
    ["example.com/hook", "must be an absolute http or https URL"],
    ["/relative/path", "must be an absolute http or https URL"],
    ["https://", "must be an absolute http or https URL"],
    ["ftp://example.com/hook", "must use the http or https scheme"],
    ["ws://example.com/socket", "must use the http or https scheme"],
    ["javascript:alert(1)", "must use the http or https scheme"],
    ["mailto:ops@example.com", "must use the http or https scheme"],
    ["https://user@example.com", "must not contain credentials; use auth_config instead"],
    ["https://user:pass@example.com", "must not contain credentials; use auth_config instead"],
    [
      `https://example.com/${"a".repeat(2049 - "https://example.com/".length)}`,
      "must be at most 2048 characters",
    ],
  ])("refuses %j: %s", (url, problem) => {
    expect(httpUrlProblem(url)).toBe(problem);
  });

  it("accepts generated http(s) URLs and refuses the same URLs under any other scheme", () => {
    fc.assert(
      fc.property(
        fc.webUrl({ validSchemes: ["http", "https"], withQueryParameters: true, withFragments: true }),
        fc.constantFrom("ftp", "ws", "wss", "file", "gopher"),
        (url, scheme) => {
          expect(httpUrlProblem(url)).toBeNull();
          expect(httpUrlProblem(url.replace(/^https?/, scheme))).not.toBeNull();
        },
      ),
    );
  });
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AUTH_TYPES, type AuthType } from "../../src/agents/agent-kinds.js";
import { AUTH_CONFIG_SPECS } from "../../src/agents/auth-config.js";
import { validateConfig } from "../../src/agents/config-schema.js";

const validate = (type: AuthType, value: unknown) =>
  validateConfig(AUTH_CONFIG_SPECS[type], value, "auth_config");

const fieldsOf = (type: AuthType, value: unknown) => validate(type, value).map((error) => error.field);

/** One complete, valid config per auth type (every optional field set where there is one). */
const VALID: Record<AuthType, Record<string, unknown>> = {
  oauth2: {
    client_id: "steward",
    client_secret: "s3cr3t-client-secret",
    token_url: "https://idp.example.com/oauth2/token",
    scope: "agents.invoke",
    audience: "https://agent.example.com",
  },
  api_key: { key: "ak_0123456789abcdef", header_name: "X-Agent-Key" },
  bearer_token: { token: "eyJhbGciOiJIUzI1NiJ9.payload.sig" },
  basic: { username: "steward", password: "correct horse battery staple" },
  hmac: { secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", header_name: "webhook-signature" },
  custom: { headers: { "X-Tenant": "acme", Authorization: "Token abc" } },
  none: {},
};

const REQUIRED: Record<AuthType, string[]> = {
  oauth2: ["client_id", "client_secret", "token_url"],
  api_key: ["key"],
  bearer_token: ["token"],
  basic: ["username", "password"],
  hmac: ["secret"],
  custom: ["headers"],
  none: [],
};

function without(config: Record<string, unknown>, field: string): Record<string, unknown> {
  const copy = { ...config };
  delete copy[field];
  return copy;
}

describe("auth_config validation", () => {
  it("has a spec for every auth type", () => {
    expect(Object.keys(AUTH_CONFIG_SPECS).sort()).toEqual([...AUTH_TYPES].sort());
  });

  describe("valid configs", () => {
    it.each(AUTH_TYPES)("accepts a complete %s config", (type) => {
      expect(validate(type, VALID[type])).toEqual([]);
    });

    it.each([
      ["oauth2", { client_id: "c", client_secret: "s", token_url: "http://localhost:9000/token" }],
      ["api_key", { key: "k" }],
      ["hmac", { secret: "raw-signing-secret" }],
      ["custom", { headers: { "x-one": "1" } }],
    ] as const)("accepts a minimal %s config (optional fields left out)", (type, config) => {
      expect(validate(type, config)).toEqual([]);
    });
  });

  describe("missing required fields", () => {
    const cases = AUTH_TYPES.flatMap((type) => REQUIRED[type].map((field) => [type, field] as const));

    it.each(cases)("%s without %s names auth_config.<field>", (type, field) => {
      const errors = validate(type, without(VALID[type], field));
      expect(errors).toContainEqual({ field: `auth_config.${field}`, message: "is required" });
    });

    it("names every missing field at once", () => {
      expect(fieldsOf("oauth2", {}).sort()).toEqual([
        "auth_config.client_id",
        "auth_config.client_secret",
        "auth_config.token_url",
      ]);
    });
  });

  describe("unknown fields", () => {
    it.each(AUTH_TYPES)("%s refuses an unknown field and names it", (type) => {
      const errors = validate(type, { ...VALID[type], webhook_secret: "x" });
      expect(errors).toEqual([{ field: "auth_config.webhook_secret", message: "is not allowed" }]);
    });

    it("refuses a field that belongs to another auth type", () => {
      expect(fieldsOf("bearer_token", { token: "t", key: "k" })).toEqual(["auth_config.key"]);
    });
  });

  describe("wrong types and empty values", () => {
    it.each([
      ["oauth2", "client_id", 42],
      ["oauth2", "client_secret", ""],
      ["oauth2", "token_url", ["https://idp.example.com/token"]],
      ["oauth2", "scope", ""],
      ["oauth2", "audience", null],
      ["api_key", "key", ""],
      ["api_key", "key", { value: "k" }],
      ["api_key", "header_name", 1],
      ["bearer_token", "token", ""],
      ["bearer_token", "token", true],
      ["basic", "username", ""],
      ["basic", "password", 1234],
      ["hmac", "secret", ""],
      ["hmac", "secret", null],
      ["custom", "headers", "X-Tenant: acme"],
      ["custom", "headers", ["X-Tenant", "acme"]],
    ] as const)("%s refuses %s = %j", (type, field, value) => {
      expect(fieldsOf(type, { ...VALID[type], [field]: value })).toContain(`auth_config.${field}`);
    });

    it("refuses a secret longer than 8192 characters", () => {
      expect(fieldsOf("bearer_token", { token: "t".repeat(8193) })).toEqual(["auth_config.token"]);
      expect(validate("bearer_token", { token: "t".repeat(8192) })).toEqual([]);
    });

    it.each([null, [], "token", 7])("refuses a non-object config %j, naming auth_config", (value) => {
      expect(fieldsOf("none", value)).toEqual(["auth_config"]);
      expect(fieldsOf("bearer_token", value)).toContain("auth_config");
    });
  });

  describe("header names", () => {
    const badNames = ["", "X API Key", "X-Key:", "Ключ", "X-Key\r\nInjected: 1", "(paren)", "a".repeat(257)];

    it.each(["api_key", "hmac"] as const)("%s refuses header names that are not HTTP tokens", (type) => {
      for (const name of badNames) {
        expect(fieldsOf(type, { ...VALID[type], header_name: name }), JSON.stringify(name)).toEqual([
          "auth_config.header_name",
        ]);
      }
    });

    it("accepts every RFC 9110 token as a header name", () => {
      const tokenChar = fc.constantFrom(
        ..."!#$%&'*+.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-",
      );
      fc.assert(
        fc.property(fc.string({ unit: tokenChar, minLength: 1, maxLength: 256 }), (name) => {
          expect(validate("api_key", { key: "k", header_name: name })).toEqual([]);
        }),
      );
    });

    it("refuses any header name containing a character outside the token set", () => {
      const separator = fc.constantFrom(...' \t"(),/:;<=>?@[\\]{}\u00e9\u0000');
      fc.assert(
        fc.property(fc.string({ maxLength: 20 }), separator, fc.string({ maxLength: 20 }), (a, sep, b) => {
          expect(fieldsOf("hmac", { secret: "s", header_name: `${a}${sep}${b}` })).toEqual([
            "auth_config.header_name",
          ]);
        }),
      );
    });

    it("custom refuses an empty headers map and an empty header value", () => {
      expect(fieldsOf("custom", { headers: {} })).toEqual(["auth_config.headers"]);
      expect(fieldsOf("custom", { headers: { "X-Tenant": "" } })).toEqual(["auth_config.headers.X-Tenant"]);
    });

    it("custom refuses more than 50 headers", () => {
      const headers = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`X-H${i}`, "v"]));
      expect(fieldsOf("custom", { headers })).toEqual(["auth_config.headers"]);
    });

    // BUG (src/agents/auth-config.ts, `custom.headers`): Type.Record with a key pattern
    // compiles to patternProperties without additionalProperties: false, so keys that
    // do not match the header-name pattern are not checked at all (neither name nor value).
    it("custom refuses a header name that is not an HTTP token", () => {
      expect(fieldsOf("custom", { headers: { "Bad Name": "v" } })).toEqual(["auth_config.headers.Bad Name"]);
    });
  });

  describe("token_url", () => {
    it.each([
      ["ftp://idp.example.com/token", "must use the http or https scheme"],
      ["file:///etc/passwd", "must use the http or https scheme"],
      ["idp.example.com/token", "must be an absolute http or https URL"],
      [
        "https://client:secret@idp.example.com/token",
        "must not contain credentials; use auth_config instead",
      ],
    ])("refuses %s, naming auth_config.token_url", (url, message) => {
      expect(validate("oauth2", { ...VALID.oauth2, token_url: url })).toEqual([
        { field: "auth_config.token_url", message },
      ]);
    });

    it("accepts any http(s) URL", () => {
      fc.assert(
        fc.property(fc.webUrl({ validSchemes: ["http", "https"] }), (url) => {
          expect(validate("oauth2", { ...VALID.oauth2, token_url: url })).toEqual([]);
        }),
      );
    });
  });

  describe("values no request could carry", () => {
    it.each(["whsec_abc", "whsec_!!!!", "whsec_"])("refuses the hmac secret %j, naming it", (secret) => {
      const problems = validate("hmac", { secret });
      expect(problems.map((problem) => problem.field)).toEqual(["auth_config.secret"]);
      expect(problems[0]?.message).toMatch(/whsec_/);
    });

    it.each([
      ["api_key", { key: "line\nbreak" }, "auth_config.key"],
      ["bearer_token", { token: "t\r\nX-Injected: 1" }, "auth_config.token"],
      ["custom", { headers: { "X-Token": "caf\u20ac" } }, "auth_config.headers.X-Token"],
      ["custom", { headers: { Host: "agent.example.com" } }, "auth_config.headers.Host"],
    ] as const)("refuses a %s config that cannot be sent as a header: %j", (type, config, field) => {
      expect(fieldsOf(type, config)).toEqual([field]);
    });
  });

  describe("secret fields are the ones stored encrypted", () => {
    it.each([
      ["oauth2", ["client_secret"]],
      ["api_key", ["key"]],
      ["bearer_token", ["token"]],
      ["basic", ["password"]],
      ["hmac", ["secret"]],
      ["custom", ["headers.*"]],
      ["none", []],
    ] as const)("%s seals %j", (type, paths) => {
      expect([...AUTH_CONFIG_SPECS[type].secretPaths]).toEqual(paths);
    });
  });
});

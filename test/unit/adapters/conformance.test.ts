import { describe, expect, it } from "vitest";
import { PLATFORMS, type Platform } from "../../../src/agents/agent-kinds.js";
import { validateConfig } from "../../../src/agents/config-schema.js";
import { type DeliveryPayload, PlatformConfigError } from "../../../src/delivery/adapters/adapter.js";
import { ADAPTERS } from "../../../src/delivery/adapters/registry.js";
import {
  adapterFor,
  CONFIGS,
  CONFIRMATIONS,
  CONTEXT,
  DESTINATIONS,
  fakeSender,
  NOTICES,
  NOW,
  notice,
  parsedBody,
  SIGNING_SECRET,
} from "./adapter-fixtures.js";

/**
 * What every adapter promises, run over every registry entry. Transport errors (the
 * sender throwing) propagate from `deliver` unchanged: the delivery worker owns the
 * transport and decides which of its failures are worth a retry.
 */

/** Answers that quote the request back, the way a careless platform might. */
function echoes(payload: DeliveryPayload): string[] {
  const url = new URL(payload.url);
  const all = `${payload.url} ${url.pathname} ${decodeURIComponent(url.pathname)} ${url.search} ${JSON.stringify(payload.headers)}`;
  return [
    JSON.stringify({ description: all }),
    JSON.stringify({ message: all }),
    JSON.stringify({ error: { message: all } }),
    JSON.stringify({ error: all }),
    all,
    url.pathname.slice(1),
  ];
}

describe("adapter registry", () => {
  it("has exactly one adapter per platform", () => {
    expect(Object.keys(ADAPTERS).sort()).toEqual([...PLATFORMS].sort());
  });
});

describe.each(PLATFORMS)("%s adapter", (platform: Platform) => {
  const definition = ADAPTERS[platform];
  const adapter = adapterFor(platform, { signingSecret: SIGNING_SECRET });

  describe("config", () => {
    it("accepts the fixture config, which names a destination", () => {
      expect(validateConfig(definition.configSpec, CONFIGS[platform], "platform_config")).toEqual([]);
      expect(definition.deliversTo(CONFIGS[platform])).toBe(true);
    });

    it("has a JSON schema the dashboard can render: an object with described properties", () => {
      const schema = definition.configSpec.schema as { type?: string; properties?: Record<string, object> };
      expect(schema.type).toBe("object");
      for (const property of Object.values(schema.properties ?? {})) {
        expect(property).toHaveProperty("description");
      }
    });

    it("declares every secret path and URL field as a property", () => {
      const properties = Object.keys((definition.configSpec.schema as { properties: object }).properties);
      for (const path of [...definition.configSpec.secretPaths, ...definition.configSpec.urlFields]) {
        expect(properties).toContain(path.split(".")[0]);
      }
    });

    it.each(ADAPTERS[platform].configSpec.secretPaths.filter((path) => !path.includes("*")))(
      "refuses to be created with %s still sealed, without quoting it",
      (path) => {
        const sealed = { ...CONFIGS[platform], [path]: { $sealed: "v1.canary-ciphertext", hint: "" } };
        const create = () => definition.create(sealed, CONTEXT);
        expect(create).toThrow(PlatformConfigError);
        expect(create).toThrow(`platform_config.${path}`);
        expect(create).not.toThrow(/canary/);
      },
    );

    it("refuses to be created from an empty config", () => {
      expect(() => definition.create({}, CONTEXT)).toThrow(PlatformConfigError);
    });
  });

  describe("format", () => {
    it.each(Object.entries(NOTICES))("makes a JSON request to the destination for a %s notice", (_, n) => {
      const payload = adapter.format(n);
      expect(payload.url).toBe(DESTINATIONS[platform]);
      expect(payload.headers["content-type"]).toBe("application/json");
      expect(typeof parsedBody(payload)).toBe("object");
    });

    it("is pure: the same notice gives the same request", () => {
      expect(adapter.format(NOTICES.success)).toEqual(adapter.format(NOTICES.success));
    });

    it("uses lower-case header names", () => {
      for (const name of Object.keys(adapter.format(NOTICES.failure).headers)) {
        expect(name).toBe(name.toLowerCase());
      }
    });

    it("puts no credential into the body", () => {
      for (const n of Object.values(NOTICES)) expect(adapter.format(n).body).not.toMatch(/canary/i);
    });

    it("shows the invocation id", () => {
      expect(adapter.format(NOTICES.failure).body).toContain(NOTICES.failure.invocationId);
    });

    it("survives a huge output", () => {
      const payload = adapter.format(notice({ output: { text: "x".repeat(1_000_000) } }));
      expect(typeof parsedBody(payload)).toBe("object");
    });
  });

  describe("deliver", () => {
    const payload = adapter.format(NOTICES.success);

    it.each([200, 201, 202, 204])("%i with the platform's confirmation is delivered", async (statusCode) => {
      const { send, sent } = fakeSender(() => ({ statusCode, body: CONFIRMATIONS[platform] }));
      expect(await adapter.deliver(payload, send, 2500)).toEqual({
        delivered: true,
        retryable: false,
        statusCode,
      });
      expect(sent).toHaveLength(1);
      expect(sent[0]?.timeoutMs).toBe(2500);
      expect(sent[0]?.payload.url).toBe(payload.url);
      expect(sent[0]?.payload.body).toBe(payload.body);
    });

    it("works detached from its adapter object, as the worker passes it on", async () => {
      const { deliver } = adapter;
      const { send } = fakeSender(() => ({ statusCode: 200, body: CONFIRMATIONS[platform] }));
      expect((await deliver(payload, send, 1000)).delivered).toBe(true);
    });

    it("429 with Retry-After in seconds is retryable after that long", async () => {
      const { send } = fakeSender(() => ({ statusCode: 429, headers: { "retry-after": "7" } }));
      expect(await adapter.deliver(payload, send, 1000)).toMatchObject({
        delivered: false,
        retryable: true,
        statusCode: 429,
        retryAfterMs: 7000,
      });
    });

    it("503 with Retry-After as an HTTP date waits until then, by the adapter's clock", async () => {
      const at = new Date(NOW.getTime() + 90_000).toUTCString();
      const { send } = fakeSender(() => ({ statusCode: 503, headers: { "retry-after": at } }));
      expect(await adapter.deliver(payload, send, 1000)).toMatchObject({
        retryable: true,
        retryAfterMs: 90_000,
      });
    });

    it.each([408, 429, 500, 502, 503, 504])("%i is retryable", async (statusCode) => {
      const { send } = fakeSender(() => ({ statusCode }));
      const outcome = await adapter.deliver(payload, send, 1000);
      expect(outcome).toMatchObject({ delivered: false, retryable: true, statusCode });
      expect(outcome.error).toContain(String(statusCode));
    });

    it.each([400, 401, 403, 404, 410, 413, 301, 302])("%i is final", async (statusCode) => {
      const { send } = fakeSender(() => ({ statusCode }));
      const outcome = await adapter.deliver(payload, send, 1000);
      expect(outcome).toMatchObject({ delivered: false, retryable: false, statusCode });
      expect(outcome.error).toContain(String(statusCode));
    });

    it("lets a network error propagate unchanged", async () => {
      const failure = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
      const send = async () => {
        throw failure;
      };
      await expect(adapter.deliver(payload, send, 1000)).rejects.toBe(failure);
    });

    it.each([400, 500])(
      "never quotes a credential in the error of a %i, whatever the platform echoes",
      async (statusCode) => {
        for (const format of [0, 1, 2, 3, 4, 5]) {
          const { send } = fakeSender((sent) => ({ statusCode, body: echoes(sent)[format] }));
          const outcome = await adapter.deliver(payload, send, 1000);
          expect(outcome.error).toBeDefined();
          expect(outcome.error).not.toMatch(/canary/i);
        }
      },
    );

    it("quotes the platform's reason when it gives one", async () => {
      const { send } = fakeSender(() => ({
        statusCode: 404,
        body: JSON.stringify({ message: "Unknown Webhook" }),
      }));
      expect((await adapter.deliver(payload, send, 1000)).error).toMatch(/HTTP 404: Unknown Webhook$/);
    });

    it("does not quote an HTML error page", async () => {
      const { send } = fakeSender(() => ({ statusCode: 502, body: "<html><body>Bad gateway</body></html>" }));
      expect((await adapter.deliver(payload, send, 1000)).error).toMatch(/HTTP 502$/);
    });
  });
});

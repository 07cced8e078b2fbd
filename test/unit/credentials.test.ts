import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { preparePlatformConfig } from "../../src/agents/agent-definition.js";
import { AUTH_CONFIG_SPECS } from "../../src/agents/auth-config.js";
import { validateConfig } from "../../src/agents/config-schema.js";
import {
  isSealedSecret,
  maskSecrets,
  type SealedSecret,
  sealSecrets,
  unsealSecrets,
} from "../../src/agents/credentials.js";
import { PLATFORM_CONFIG_SPECS } from "../../src/agents/platform-config.js";
import { SecretBox, SecretDecryptionError } from "../../src/crypto/secret-box.js";

const box = new SecretBox(Buffer.alloc(32, 0x5a));
const AGENT = "agt_01jc0000000000000000000000";
const auth = { agentId: AGENT, section: "auth_config" };
const platform = { agentId: AGENT, section: "platform_config" };

const oauth2 = AUTH_CONFIG_SPECS.oauth2.secretPaths;
const custom = AUTH_CONFIG_SPECS.custom.secretPaths;
const customHttp = PLATFORM_CONFIG_SPECS.custom_http.secretPaths;

const OAUTH2 = {
  client_id: "steward-client",
  client_secret: "cs_9f8e7d6c5b4a3210",
  token_url: "https://idp.example.com/token",
};

function sealedAt(config: Record<string, unknown>, key: string): SealedSecret {
  const value = config[key];
  if (!isSealedSecret(value)) throw new Error(`${key} is not sealed: ${JSON.stringify(value)}`);
  return value;
}

describe("sealSecrets", () => {
  it("seals the secret fields and leaves the others as they were", () => {
    const stored = sealSecrets(OAUTH2, oauth2, box, auth);
    expect(stored.client_id).toBe(OAUTH2.client_id);
    expect(stored.token_url).toBe(OAUTH2.token_url);
    expect(sealedAt(stored, "client_secret").$sealed).toMatch(/^v1\./);
  });

  it("does not modify the config it was given", () => {
    const input = structuredClone(OAUTH2);
    sealSecrets(input, oauth2, box, auth);
    expect(input).toEqual(OAUTH2);
  });

  it("never stores the plaintext, for any secret", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 8, maxLength: 100 }), (secret) => {
        // JSON escapes these two, which would hide the secret from a plain substring search.
        fc.pre(!secret.includes('"') && !secret.includes("\\"));
        const stored = sealSecrets({ token: secret }, ["token"], box, auth);
        // The last four characters are kept as a hint; the whole secret must not appear.
        expect(JSON.stringify(stored)).not.toContain(secret);
      }),
    );
  });

  it("seals every value of a headers map", () => {
    const headers = {
      Authorization: "Token very-secret-1",
      "X-Api-Key": "very-secret-2",
      "X.Dotted": "very-secret-3",
    };
    const stored = sealSecrets({ headers }, custom, box, auth);
    const storedHeaders = stored.headers as Record<string, unknown>;
    expect(Object.keys(storedHeaders).sort()).toEqual(Object.keys(headers).sort());
    for (const name of Object.keys(headers)) expect(isSealedSecret(storedHeaders[name])).toBe(true);
    const json = JSON.stringify(stored);
    for (const value of Object.values(headers)) expect(json).not.toContain(value);
  });

  it("seals both the webhook URL and the headers of a custom_http platform", () => {
    const config = {
      webhook_url: "https://results.example.com/hook?token=abc123",
      headers: { "X-K": "hdr-secret" },
    };
    const json = JSON.stringify(sealSecrets(config, customHttp, box, platform));
    expect(json).not.toContain("token=abc123");
    expect(json).not.toContain("hdr-secret");
  });

  it("leaves optional secret fields that are absent absent", () => {
    expect(sealSecrets({}, customHttp, box, platform)).toEqual({});
  });
});

describe("maskSecrets", () => {
  it.each([
    ["cs_9f8e7d6c5b4a3210", "****3210"],
    ["123456789012", "****9012"],
    ["12345678901", "****"],
    ["short", "****"],
    ["x", "****"],
  ])("shows %j as %j", (secret, mask) => {
    const stored = sealSecrets({ ...OAUTH2, client_secret: secret }, oauth2, box, auth);
    expect(maskSecrets(stored)).toEqual({ ...OAUTH2, client_secret: mask });
  });

  it("masks with **** and the last four characters exactly when the secret has at least 12", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40 }), (secret) => {
        const stored = sealSecrets({ token: secret }, ["token"], box, auth);
        expect(maskSecrets(stored).token).toBe(secret.length >= 12 ? `****${secret.slice(-4)}` : "****");
      }),
    );
  });

  it("masks every header value and keeps the header names", () => {
    const stored = sealSecrets(
      { headers: { Authorization: "Token 0123456789abcdef", "X-Short": "abc" } },
      custom,
      box,
      auth,
    );
    expect(maskSecrets(stored)).toEqual({ headers: { Authorization: "****cdef", "X-Short": "****" } });
  });

  it("leaves a config without secrets unchanged", () => {
    const config = { tenant_id: "t", channel_id: "c", nested: { list: [1, 2] }, flag: true, none: null };
    expect(maskSecrets(config)).toEqual(config);
  });
});

describe("sending a config back", () => {
  const previous = sealSecrets(OAUTH2, oauth2, box, auth);
  const readBack = maskSecrets(previous);

  it("keeps the stored credential when the mask is sent back", () => {
    const stored = sealSecrets(readBack, oauth2, box, { ...auth, previous });
    expect(sealedAt(stored, "client_secret").$sealed).toBe(sealedAt(previous, "client_secret").$sealed);
    expect(unsealSecrets(stored, oauth2, box, auth).client_secret).toBe(OAUTH2.client_secret);
  });

  it("keeps a short credential when its bare **** mask is sent back", () => {
    const shortPrevious = sealSecrets({ token: "abc" }, ["token"], box, auth);
    const stored = sealSecrets({ token: "****" }, ["token"], box, { ...auth, previous: shortPrevious });
    expect(stored).toEqual(shortPrevious);
  });

  it("replaces the stored credential when a new value is sent", () => {
    const stored = sealSecrets({ ...readBack, client_secret: "cs_new_value_000000" }, oauth2, box, {
      ...auth,
      previous,
    });
    expect(sealedAt(stored, "client_secret").$sealed).not.toBe(sealedAt(previous, "client_secret").$sealed);
    expect(unsealSecrets(stored, oauth2, box, auth).client_secret).toBe("cs_new_value_000000");
    expect(maskSecrets(stored).client_secret).toBe("****0000");
  });

  it("treats a mask that does not match the stored hint as a new secret", () => {
    const stored = sealSecrets({ ...OAUTH2, client_secret: "****9999" }, oauth2, box, { ...auth, previous });
    expect(unsealSecrets(stored, oauth2, box, auth).client_secret).toBe("****9999");
  });

  it("keeps each header's credential when the masked headers are sent back, and replaces a changed one", () => {
    const headers = { Authorization: "Token 0123456789abcdef", "X-Tenant": "acme-tenant-0001" };
    const before = sealSecrets({ headers }, custom, box, auth);
    const sentBack = maskSecrets(before) as { headers: Record<string, string> };
    sentBack.headers["X-Tenant"] = "acme-tenant-0002";
    const after = sealSecrets(sentBack, custom, box, { ...auth, previous: before });
    const beforeHeaders = before.headers as Record<string, SealedSecret>;
    const afterHeaders = after.headers as Record<string, SealedSecret>;
    expect(afterHeaders.Authorization).toEqual(beforeHeaders.Authorization);
    expect(afterHeaders["X-Tenant"]?.$sealed).not.toBe(beforeHeaders["X-Tenant"]?.$sealed);
    expect(unsealSecrets(after, custom, box, auth).headers).toEqual({
      Authorization: "Token 0123456789abcdef",
      "X-Tenant": "acme-tenant-0002",
    });
  });

  it("does not take a credential from another path whose mask happens to match", () => {
    const before = sealSecrets(
      { headers: { "X-A": "same-tail-1234", "X-B": "other-tail-5678" } },
      custom,
      box,
      auth,
    );
    const after = sealSecrets({ headers: { "X-B": "****1234" } }, custom, box, { ...auth, previous: before });
    expect(unsealSecrets(after, custom, box, auth).headers).toEqual({ "X-B": "****1234" });
  });

  it("passes validation again when a masked auth config is sent back", () => {
    expect(validateConfig(AUTH_CONFIG_SPECS.oauth2, readBack, "auth_config")).toEqual([]);
  });

  it("accepts a masked webhook URL sent back, keeping the stored URL", () => {
    const slack = { webhook_url: "https://hooks.slack.com/services/T000/B000/XXXXXXXX", channel: "#ops" };
    const stored = sealSecrets(slack, PLATFORM_CONFIG_SPECS.slack.secretPaths, box, platform);
    const resent = preparePlatformConfig("slack", maskSecrets(stored), box, platform.agentId, stored);
    expect(resent.errors).toEqual([]);
    expect(resent.stored).toEqual(stored);
  });

  it("still checks a masked-looking URL that matches no stored credential", () => {
    const resent = preparePlatformConfig(
      "slack",
      { webhook_url: "****XXXX", channel: "#ops" },
      box,
      platform.agentId,
    );
    expect(resent.errors.map((error) => error.field)).toEqual(["platform_config.webhook_url"]);
  });
});

describe("unsealSecrets", () => {
  it("gives back exactly the config that was sealed, for any secrets", () => {
    const secret = fc.string({ unit: "binary", minLength: 1, maxLength: 60 });
    fc.assert(
      fc.property(
        secret,
        fc.dictionary(fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/), secret),
        (s, headers) => {
          const config = { webhook_url: s, headers };
          const stored = sealSecrets(config, customHttp, box, platform);
          expect(unsealSecrets(stored, customHttp, box, platform)).toEqual(config);
        },
      ),
    );
  });

  it("does not modify the stored config", () => {
    const stored = sealSecrets(OAUTH2, oauth2, box, auth);
    const copy = structuredClone(stored);
    unsealSecrets(stored, oauth2, box, auth);
    expect(stored).toEqual(copy);
  });

  it("refuses a sealed value copied to another agent", () => {
    const stored = sealSecrets(OAUTH2, oauth2, box, auth);
    expect(() => unsealSecrets(stored, oauth2, box, { ...auth, agentId: "agt_other" })).toThrow(
      SecretDecryptionError,
    );
  });

  it("refuses a sealed value moved to another field", () => {
    const stored = sealSecrets({ username: "u", password: "p4ssw0rd-long" }, ["password"], box, auth);
    const moved = { username: "u", token: stored.password };
    expect(() => unsealSecrets(moved, ["token"], box, auth)).toThrow(SecretDecryptionError);
  });

  it("refuses a header value moved to another header", () => {
    const stored = sealSecrets({ headers: { "X-A": "secret-a" } }, custom, box, auth);
    const moved = { headers: { "X-B": (stored.headers as Record<string, unknown>)["X-A"] } };
    expect(() => unsealSecrets(moved, custom, box, auth)).toThrow(SecretDecryptionError);
  });
});

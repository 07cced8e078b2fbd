import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { displayPrefix, generateApiKey, hashApiKey } from "../../src/auth/api-key-secret.js";

const KEY_FORMAT = /^sk_live_[0-9A-Za-z]{32}$/;

describe("generateApiKey", () => {
  it("is sk_live_ followed by 32 base62 characters", () => {
    for (let i = 0; i < 1000; i++) expect(generateApiKey()).toMatch(KEY_FORMAT);
  });

  it("never repeats a key", () => {
    const keys = new Set(Array.from({ length: 10_000 }, generateApiKey));
    expect(keys.size).toBe(10_000);
  });

  it("draws every base62 character equally often", () => {
    const body = Array.from({ length: 10_000 }, () => generateApiKey().slice("sk_live_".length)).join("");
    const counts = new Map<string, number>();
    for (const char of body) counts.set(char, (counts.get(char) ?? 0) + 1);
    expect(counts.size).toBe(62);
    // 320,000 characters over 62 symbols: about 5161 each (σ ≈ 71). A plain `byte % 62`
    // would give the first 8 symbols about 6250 each, well outside these ±5σ bounds.
    expect(Math.min(...counts.values())).toBeGreaterThan(4800);
    expect(Math.max(...counts.values())).toBeLessThan(5550);
  });
});

describe("displayPrefix", () => {
  it("keeps sk_live_ and the first 4 characters of the body", () => {
    const key = generateApiKey();
    expect(displayPrefix(key)).toBe(key.slice(0, 12));
    expect(displayPrefix("sk_live_AbCdEfGh0123456789abcdefghijklmnop")).toBe("sk_live_AbCd");
  });

  it("reveals at most 4 secret characters of any generated key", () => {
    for (let i = 0; i < 100; i++) {
      const key = generateApiKey();
      const prefix = displayPrefix(key);
      expect(prefix).toMatch(/^sk_live_[0-9A-Za-z]{4}$/);
      expect(key.startsWith(prefix)).toBe(true);
    }
  });

  it.each([
    ["abcdefgh", "abcd"],
    ["abc", "abc"],
    ["", ""],
    ["sk_live_", "sk_live_"],
  ])("shows only the first 4 characters of a key without the prefix: %j → %j", (key, prefix) => {
    expect(displayPrefix(key)).toBe(prefix);
  });
});

describe("hashApiKey", () => {
  it("is a deterministic SHA-256 hex digest", () => {
    const key = generateApiKey();
    expect(hashApiKey(key)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashApiKey(key)).toBe(hashApiKey(key));
    expect(hashApiKey("sk_live_test")).toBe(
      "89b9c7386ff0a7338d41c4944a2a03d40dd334d0a0646c3fa8ce041b719ec5fb",
    );
  });

  it("never contains the key or its body", () => {
    for (let i = 0; i < 200; i++) {
      const key = generateApiKey();
      const hash = hashApiKey(key);
      expect(hash).not.toContain(key);
      expect(hash).not.toContain(key.slice(8));
    }
  });

  it("differs for different keys", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (a, b) => {
        fc.pre(a !== b);
        expect(hashApiKey(a)).not.toBe(hashApiKey(b));
      }),
    );
  });

  it("distinguishes keys that differ only in case", () => {
    const key = "sk_live_AbCdEfGh0123456789abcdefghijklmnop";
    expect(hashApiKey(key)).not.toBe(hashApiKey(key.toLowerCase()));
  });
});

import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { approvalFingerprint, type FingerprintParts } from "../../src/approvals/triggers/fingerprint.js";

const BASE: FingerprintParts = {
  agentId: "agt_1",
  input: "Summarise ticket 42",
  context: { environment: "production", ticket: { id: 42, tags: ["a", "b"] } },
  identity: { userId: "u-123", userEmail: "ada@example.org", system: "helpdesk", principalId: "key_1" },
};

/** The same object with keys inserted in reverse order, at every level. */
function reversedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reversedKeys);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value)
        .reverse()
        .map(([key, item]) => [key, reversedKeys(item)]),
    );
  }
  return value;
}

describe("approvalFingerprint", () => {
  it("is the SHA-256 hex of the parts as JSON with sorted keys", () => {
    const canonical =
      '{"agentId":"agt_1","context":{"environment":"production","ticket":{"id":42,"tags":["a","b"]}},' +
      '"identity":{"principalId":"key_1","system":"helpdesk","userEmail":"ada@example.org","userId":"u-123"},' +
      '"input":"Summarise ticket 42"}';
    expect(approvalFingerprint(BASE)).toBe(createHash("sha256").update(canonical).digest("hex"));
  });

  it("does not depend on key order", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (context) => {
        const parts = { ...BASE, context };
        const reordered = reversedKeys(parts) as FingerprintParts;
        expect(approvalFingerprint(reordered)).toBe(approvalFingerprint(parts));
      }),
    );
  });

  it("changes with the input", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (a, b) => {
        fc.pre(a !== b);
        expect(approvalFingerprint({ ...BASE, input: a })).not.toBe(
          approvalFingerprint({ ...BASE, input: b }),
        );
      }),
    );
  });

  it.each([
    ["agent", { agentId: "agt_2" }],
    ["context", { context: { environment: "staging", ticket: { id: 42, tags: ["a", "b"] } } }],
    ["user id", { identity: { ...BASE.identity, userId: "u-124" } }],
    ["user email", { identity: { ...BASE.identity, userEmail: "Ada@example.org" } }],
    ["system", { identity: { ...BASE.identity, system: undefined } }],
    ["principal", { identity: { ...BASE.identity, principalId: "key_2" } }],
  ])("changes with the %s", (_, change) => {
    expect(approvalFingerprint({ ...BASE, ...change })).not.toBe(approvalFingerprint(BASE));
  });

  it("ignores identity fields beyond the chain, and treats undefined as absent", () => {
    const wider = { ...BASE.identity, sessionId: "s-1", traceId: "t-1", userName: "Ada" };
    expect(approvalFingerprint({ ...BASE, identity: wider })).toBe(approvalFingerprint(BASE));
    const { system: _, ...withoutSystem } = BASE.identity;
    expect(approvalFingerprint({ ...BASE, identity: { ...withoutSystem, system: undefined } })).toBe(
      approvalFingerprint({ ...BASE, identity: withoutSystem }),
    );
  });
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ID_PREFIXES, type IdKind, newId } from "../../src/ids.js";

const CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz";
const BODY = /^[0-9abcdefghjkmnpqrstvwxyz]{26}$/;
const MAX_TIME = 2 ** 48 - 1;

/** The millisecond timestamp a ULID keeps in the first 10 characters of its body. */
function timeOf(id: string): number {
  const body = id.slice(id.indexOf("_") + 1);
  let time = 0;
  for (const char of body.slice(0, 10)) time = time * 32 + CROCKFORD.indexOf(char);
  return time;
}

describe("newId", () => {
  it.each([
    ["organization", "org"],
    ["user", "usr"],
    ["apiKey", "key"],
    ["auditEvent", "aud"],
    ["externalAgent", "agt"],
  ] as const)("gives a %s id the %s_ prefix and a 26-character Crockford body", (kind, prefix) => {
    const id = newId(kind);
    expect(id.startsWith(`${prefix}_`)).toBe(true);
    expect(id.slice(prefix.length + 1)).toMatch(BODY);
  });

  it("covers every kind", () => {
    expect(Object.keys(ID_PREFIXES).sort()).toEqual([
      "agentAlert",
      "agentAlertRule",
      "apiKey",
      "approval",
      "approvalRule",
      "auditEvent",
      "delivery",
      "discoveryToken",
      "externalAgent",
      "invocation",
      "job",
      "organization",
      "policy",
      "user",
      "webhookSubscription",
    ]);
  });

  it("only uses lower-case Crockford characters (no i, l, o, u), for any time", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...(Object.keys(ID_PREFIXES) as IdKind[])),
        fc.integer({ min: 0, max: MAX_TIME }),
        (kind, time) => {
          const id = newId(kind, time);
          expect(id).toMatch(new RegExp(`^${ID_PREFIXES[kind]}_[0-9a-hjkmnp-tv-z]{26}$`));
        },
      ),
    );
  });

  it("encodes its creation time", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_TIME }), (time) => {
        expect(timeOf(newId("externalAgent", time))).toBe(time);
      }),
    );
    const before = Date.now();
    const id = newId("user");
    const after = Date.now();
    expect(timeOf(id)).toBeGreaterThanOrEqual(before);
    expect(timeOf(id)).toBeLessThanOrEqual(after);
  });

  it("sorts ids made at increasing times in creation order", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: MAX_TIME - 1 }),
        fc.integer({ min: 1, max: MAX_TIME }),
        (time, gap) => {
          const later = Math.min(time + gap, MAX_TIME);
          expect(newId("externalAgent", time) < newId("externalAgent", later)).toBe(true);
        },
      ),
    );
  });

  it("sorts a batch of ids made at distinct times in creation order", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: MAX_TIME }), { minLength: 2, maxLength: 50 }),
        (times) => {
          const ids = times.map((time) => ({ time, id: newId("auditEvent", time) }));
          const byId = [...ids].sort((a, b) => (a.id < b.id ? -1 : 1)).map((entry) => entry.time);
          expect(byId).toEqual([...times].sort((a, b) => a - b));
        },
      ),
    );
  });

  it("sorts ids made one millisecond apart around the current time", () => {
    const now = Date.now();
    expect(newId("apiKey", now - 1) < newId("apiKey", now)).toBe(true);
    expect(newId("apiKey", now) < newId("apiKey", now + 1)).toBe(true);
  });

  it("makes no duplicates among 10,000 ids, even within one millisecond", () => {
    const now = Date.now();
    const sameMillisecond = new Set(Array.from({ length: 10_000 }, () => newId("auditEvent", now)));
    expect(sameMillisecond.size).toBe(10_000);
    const unpinned = new Set(Array.from({ length: 10_000 }, () => newId("auditEvent")));
    expect(unpinned.size).toBe(10_000);
  });
});

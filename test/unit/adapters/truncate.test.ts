import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ELLIPSIS, truncate } from "../../../src/delivery/adapters/truncate.js";

const backslash = (char: string) => (char === "." ? "\\." : char);

describe("truncate", () => {
  it.each([
    ["short", 10, "short"],
    ["exactly10!", 10, "exactly10!"],
    ["eleven chars", 10, "eleven ch…"],
    ["😀😀😀", 6, "😀😀😀"],
    ["😀😀😀", 5, "😀😀…"],
    ["😀😀😀", 4, "😀…"],
    ["a😀", 2, "a…"],
  ])("truncate(%j, %i) is %j", (text, max, expected) => {
    expect(truncate(text, max)).toBe(expected);
  });

  it("measures the escaped text and never cuts through an escape", () => {
    expect(truncate("a.b", 10, backslash)).toBe("a\\.b");
    expect(truncate("....", 4, backslash)).toBe("\\.…");
    expect(truncate("....", 5, backslash)).toBe("\\.\\.…");
  });

  it("never exceeds the limit, never splits a surrogate pair, and keeps a prefix", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "binary", maxLength: 300 }),
        fc.integer({ min: 1, max: 200 }),
        (text, max) => {
          const cut = truncate(text, max);
          expect(cut.length).toBeLessThanOrEqual(max);
          expect(cut.isWellFormed()).toBe(text.isWellFormed());
          if (cut === text) return;
          expect(cut.endsWith(ELLIPSIS)).toBe(true);
          expect(text.startsWith(cut.slice(0, -ELLIPSIS.length))).toBe(true);
          // Nothing more would have fitted.
          expect(cut.length).toBeGreaterThanOrEqual(max - 2);
        },
      ),
    );
  });
});

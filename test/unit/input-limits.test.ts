import { describe, expect, it } from "vitest";
import { MAX_JSON_DEPTH, unacceptableJson } from "../../src/http/input-limits.js";

const nested = (levels: number): unknown => {
  let value: unknown = "leaf";
  for (let i = 0; i < levels; i++) value = { a: value };
  return value;
};

describe("unacceptableJson", () => {
  it("takes ordinary bodies, raw bytes and nesting up to the limit", () => {
    expect(unacceptableJson({ name: "agent 😀", tags: ["a", "b"], n: 1 }, false)).toBeUndefined();
    expect(unacceptableJson(Buffer.from([0, 1, 2]), false)).toBeUndefined();
    expect(unacceptableJson(nested(MAX_JSON_DEPTH), false)).toBeUndefined();
  });

  it("names the place nesting goes past the limit", () => {
    const problem = unacceptableJson({ config: nested(MAX_JSON_DEPTH) }, true);
    expect(problem?.field).toMatch(/^config(\.a)+$/);
    expect(problem?.message).toBe(`nests deeper than ${MAX_JSON_DEPTH} levels`);
  });

  it("refuses NUL and unpaired surrogates in values and keys, naming the field", () => {
    expect(unacceptableJson({ reason: "a\u0000b" }, false)).toEqual({
      field: "reason",
      message: "must not contain a NUL character (\\u0000)",
    });
    expect(unacceptableJson({ items: [{ x: "ok" }, { x: "\ud800" }] }, false)?.field).toBe("items[1].x");
    expect(unacceptableJson({ "k\u0000": 1 }, false)?.field).toBe("k\u0000");
  });

  it("lets such text through where the route stores it cleaned", () => {
    expect(unacceptableJson({ input: "a\u0000b \ud800" }, true)).toBeUndefined();
  });
});

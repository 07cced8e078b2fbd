import { describe, expect, it } from "vitest";
import { durationText, outputText, statusLabel, toneOf } from "../../../src/delivery/adapters/notice-text.js";

describe("notice text", () => {
  it.each([
    ["success", "success"],
    ["failure", "failure"],
    ["timeout", "failure"],
    ["policy_denied", "refusal"],
    ["rate_limited", "refusal"],
    ["budget_exceeded", "refusal"],
    ["something_new", "failure"],
  ])("%s has the %s tone", (status, tone) => {
    expect(toneOf(status)).toBe(tone);
  });

  it("shows a status it does not know as it is", () => {
    expect(statusLabel("something_new")).toBe("something_new");
  });

  it.each([
    [null, ""],
    [undefined, ""],
    ["text", "text"],
    [{ a: [1, 2], b: { c: null } }, '{"a":[1,2],"b":{"c":null}}'],
    [42, "42"],
    [false, "false"],
  ])("outputText(%j) is %j", (output, text) => {
    expect(outputText(output)).toBe(text);
  });

  it.each([
    [null, "n/a"],
    [0, "0 ms"],
    [999, "999 ms"],
    [1000, "1.0 s"],
    [83_450, "83.5 s"],
  ])("durationText(%j) is %j", (ms, text) => {
    expect(durationText(ms)).toBe(text);
  });
});

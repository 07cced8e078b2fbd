import { describe, expect, it } from "vitest";
import { failsAgain, HttpNodeStatusError } from "../../src/executor/final-failure.js";
import { GraphNodeError } from "../../src/executor/graph-compiler.js";
import { GraphLimitError } from "../../src/executor/graph-definition.js";
import { ExpressionError } from "../../src/executor/graph-expression.js";
import { LlmError } from "../../src/executor/llm-client.js";

const llm = (code: LlmError["code"], retryable: boolean) => new LlmError("llm", { code, retryable });

describe("failsAgain: whether the next run of a job would meet the same failure", () => {
  it.each([
    ["a graph limit", new GraphLimitError("max_steps", "too many steps")],
    ["an expression failing on the state", new ExpressionError("D3137", "always fails")],
    ["an http node's 404", new HttpNodeStatusError("GET x answered 404", 404)],
    ["the LLM provider refusing the key", llm("http_error", false)],
    ["the LLM provider refusing the request", llm("provider_error", false)],
  ])("yes for %s, also inside the node's failure", (_, error) => {
    expect(failsAgain(error)).toBe(true);
    expect(failsAgain(new GraphNodeError("node", error))).toBe(true);
  });

  it.each([
    ["an http node's 503", new HttpNodeStatusError("GET x answered 503", 503)],
    ["an http node's 429", new HttpNodeStatusError("GET x answered 429", 429)],
    ["an LLM stream cut off mid-chunk", llm("bad_stream", false)],
    ["an aborted LLM call", llm("aborted", false)],
    ["the LLM provider overloaded", llm("http_error", true)],
    ["a network error", new Error("ECONNRESET")],
  ])("no for %s", (_, error) => {
    expect(failsAgain(new GraphNodeError("node", error))).toBe(false);
  });
});

import { describe, expect, it } from "vitest";
import { redact } from "../../../src/crypto/redact.js";
import type { HttpAnswer } from "../../../src/delivery/adapters/adapter.js";
import { readAnswer } from "../../../src/delivery/adapters/platform-answer.js";

const NOW = new Date("2026-03-01T12:00:00Z");
const rules = {
  platform: "Chat",
  secrets: ["https://chat.example.com/hooks/abcdefghijklmnopqrstuvwxyz"],
  now: () => NOW,
};
const answer = (statusCode: number, body = "", headers: HttpAnswer["headers"] = {}): HttpAnswer => ({
  statusCode,
  headers,
  body,
});

describe("readAnswer", () => {
  it.each([
    ["120", 120_000],
    ["0", 0],
    ["1.5", 1_500],
    ["Sun, 01 Mar 2026 12:00:30 GMT", 30_000],
    ["Sun, 01 Mar 2026 11:00:00 GMT", 0],
  ])("reads Retry-After %j as %i ms", (retryAfter, ms) => {
    expect(readAnswer(answer(429, "", { "retry-after": retryAfter }), rules).retryAfterMs).toBe(ms);
  });

  it("leaves retryAfterMs out when Retry-After is missing or unreadable", () => {
    expect(readAnswer(answer(503), rules)).not.toHaveProperty("retryAfterMs");
    expect(readAnswer(answer(503, "", { "retry-after": "soon" }), rules)).not.toHaveProperty("retryAfterMs");
  });

  it("says that a redirect is not followed", () => {
    expect(readAnswer(answer(302, "", { location: "https://elsewhere.example.com" }), rules)).toEqual({
      delivered: false,
      retryable: false,
      statusCode: 302,
      error: "Chat answered with a redirect (HTTP 302), which is not followed",
    });
  });

  it.each([
    ['{"description":"Bad Request: chat not found"}', "Bad Request: chat not found"],
    ['{"message":"Unknown Webhook","code":10015}', "Unknown Webhook"],
    [
      '{"error":{"code":"InvalidTemplate","message":"Unable to process template"}}',
      "Unable to process template",
    ],
    ['{"error":"invalid_token"}', "invalid_token"],
    ["channel_not_found", "channel_not_found"],
    ['{"message":"line one\\n   line two"}', "line one line two"],
  ])("quotes the platform's reason from %s", (body, reason) => {
    expect(readAnswer(answer(400, body), rules).error).toBe(`Chat answered HTTP 400: ${reason}`);
  });

  it.each(["<html>oops</html>", "", "[1,2]", '{"message":42}', "x".repeat(101)])(
    "quotes nothing from %j",
    (body) => {
      expect(readAnswer(answer(400, body), rules).error).toBe("Chat answered HTTP 400");
    },
  );

  it("quotes at most 200 characters", () => {
    const error = readAnswer(answer(400, JSON.stringify({ message: "m".repeat(1000) })), rules).error ?? "";
    expect(error.length).toBeLessThanOrEqual("Chat answered HTTP 400: ".length + 200);
  });
});

describe("redact", () => {
  const secrets = [
    "https://chat.example.com/hooks/abcdefghijklmnopqrstuvwxyz?sig=0123456789abcdef0123",
    "tok:en-12345",
  ];

  it.each([
    "https://chat.example.com/hooks/abcdefghijklmnopqrstuvwxyz?sig=0123456789abcdef0123",
    "/hooks/abcdefghijklmnopqrstuvwxyz?sig=0123456789abcdef0123",
    "abcdefghijklmnopqrstuvwxyz",
    "0123456789abcdef0123",
    "tok:en-12345",
    "tok%3Aen-12345",
  ])("removes %j", (leak) => {
    expect(redact(`before ${leak} after`, secrets)).toBe("before [redacted] after");
  });

  it("leaves short, common pieces of a URL alone", () => {
    expect(redact("POST /hooks on chat.example.com", secrets)).toBe("POST /hooks on chat.example.com");
    expect(redact("a/b", ["https://x.example.com/"])).toBe("a/b");
  });
});

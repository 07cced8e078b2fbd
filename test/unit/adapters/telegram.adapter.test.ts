import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HttpSender } from "../../../src/delivery/adapters/adapter.js";
import {
  escapeMarkdownV2,
  TELEGRAM_TEXT_LIMIT,
  type TelegramMessage,
  telegramMessage,
} from "../../../src/delivery/adapters/telegram.adapter.js";
import { adapterFor, CONFIGS, fakeSender, NOTICES, notice, parsedBody } from "./adapter-fixtures.js";

const RESERVED = "_*[]()~`>#+-=|{}.!\\";

/**
 * What Telegram's MarkdownV2 parser would refuse in `text`: a reserved character
 * outside an entity without its backslash, a ` or \ unescaped inside code, a dangling
 * backslash, an entity left open. Knows the entities Steward uses: *bold*, `code`, ```pre```.
 */
function markdownV2Problems(text: string): string[] {
  const chars = [...text];
  const problems: string[] = [];
  const at = (i: number, token: string) => chars.slice(i, i + token.length).join("") === token;
  let bold = false;
  let i = 0;
  const code = (fence: string) => {
    i += fence.length;
    while (i < chars.length) {
      if (chars[i] === "\\") {
        if (i + 1 >= chars.length) problems.push("dangling backslash");
        i += 2;
      } else if (at(i, fence)) {
        i += fence.length;
        return;
      } else {
        if (chars[i] === "`") problems.push(`unescaped \` in code at ${i}`);
        i += 1;
      }
    }
    problems.push(`unclosed ${fence}`);
  };
  while (i < chars.length) {
    const char = chars[i] as string;
    if (char === "\\") {
      if (i + 1 >= chars.length) problems.push("dangling backslash");
      i += 2;
    } else if (at(i, "```")) code("```");
    else if (char === "`") code("`");
    else if (char === "*") {
      bold = !bold;
      i += 1;
    } else {
      if (RESERVED.includes(char)) problems.push(`unescaped ${char} at ${i}`);
      i += 1;
    }
  }
  if (bold) problems.push("unclosed bold");
  return problems;
}

const TRICKY = [
  ...[...RESERVED].map((char) => `before${char}after`),
  RESERVED,
  "1 + 1 = 2. Really!",
  "C:\\temp\\new",
  "trailing backslash\\",
  "```injected pre```",
  "*not bold* _not italic_ ~not struck~ ||not spoiler||",
  "[not a link](https://example.com)",
  "🚀 launched! 👩‍💻 coding… 🇺🇳",
  "emoji at a limit 😀😀😀",
  "Ünïcödé ∑ 中文 العربية",
  "",
];

describe("escapeMarkdownV2", () => {
  it.each(["a.b", "*open bold", "```\nopen pre", "`a`b`", "dangling\\", "```\n`\n```"])(
    "(the check itself) finds what Telegram would refuse in %j",
    (text) => {
      expect(markdownV2Problems(text)).not.toEqual([]);
    },
  );

  it.each([
    ...[...RESERVED].map((char) => [char, `\\${char}`]),
    ["plain words 123", "plain words 123"],
    ["a.b", "a\\.b"],
    ["🚀 done!", "🚀 done\\!"],
    ["👩‍💻", "👩‍💻"],
    ["\\*", "\\\\\\*"],
    ["(1+1)=2", "\\(1\\+1\\)\\=2"],
  ])("escapes %j as %j", (input, escaped) => {
    expect(escapeMarkdownV2(input)).toBe(escaped);
  });

  it("leaves nothing unescaped and loses nothing, for any text", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 200 }), (text) => {
        const escaped = escapeMarkdownV2(text);
        expect(markdownV2Problems(escaped)).toEqual([]);
        expect(escaped.replace(/\\([\s\S])/g, "$1")).toBe(text);
      }),
    );
  });
});

describe("telegram message", () => {
  it.each(TRICKY)("is valid MarkdownV2 with %j as agent name, error and output", (tricky) => {
    for (const n of [
      notice({ agentName: tricky || "x", error: tricky, status: "failure" }),
      notice({ output: tricky }),
      notice({ output: { tricky } }),
    ]) {
      expect(markdownV2Problems(telegramMessage(n, 1).text)).toEqual([]);
    }
  });

  it("reads as intended", () => {
    expect(telegramMessage(NOTICES.success, 42).text).toBe(
      [
        "*support\\-bot: Succeeded*",
        "Status: Succeeded · Duration: 1\\.2 s",
        "Invocation: `inv_01jc7s3bz8m0v4kx2g6wq9hfre`",
        "```",
        '{"answer":"Reset the router","confidence":0.93}',
        "```",
      ].join("\n"),
    );
  });

  it("shows the error of a failure", () => {
    expect(telegramMessage(NOTICES.failure, 42).text).toContain("Error: agent answered HTTP 502");
  });

  it.each([
    ["plain text", "a".repeat(10_000)],
    ["reserved characters", ".".repeat(10_000)],
    ["backslashes and backticks", "\\`".repeat(5_000)],
    ["emoji", "😀".repeat(10_000)],
  ])("cuts a 10,000-character output of %s to Telegram's 4096 limit, validly", (_, output) => {
    const { text } = telegramMessage(notice({ output, error: "x".repeat(10_000) }), 42);
    expect(text.length).toBeLessThanOrEqual(TELEGRAM_TEXT_LIMIT);
    expect(text.length).toBeGreaterThan(TELEGRAM_TEXT_LIMIT - 10);
    expect(text.isWellFormed()).toBe(true);
    expect(text.endsWith("…\n```")).toBe(true);
    expect(markdownV2Problems(text)).toEqual([]);
  });

  it("has an inline keyboard button to the dashboard, except for a localhost dashboard Telegram would refuse", () => {
    expect(telegramMessage(NOTICES.success, 42).reply_markup).toEqual({
      inline_keyboard: [[{ text: "Open in Steward", url: NOTICES.success.dashboardUrl }]],
    });
    for (const dashboardUrl of [
      "http://localhost:8080/lineage/i",
      "http://127.0.0.1/i",
      "http://[::1]/i",
      // A service name without a dot, as in Docker or Kubernetes: Telegram refuses it too.
      "http://steward:8080/lineage/i",
    ]) {
      expect(telegramMessage(notice({ dashboardUrl }), 42).reply_markup).toBeUndefined();
    }
  });

  it("posts to {STEWARD_TELEGRAM_API_URL}/bot{token}/sendMessage with MarkdownV2", () => {
    const payload = adapterFor("telegram", { telegramApiUrl: "http://127.0.0.1:8081/" }).format(
      NOTICES.success,
    );
    expect(payload.url).toBe(`http://127.0.0.1:8081/bot${CONFIGS.telegram.bot_token}/sendMessage`);
    expect(parsedBody(payload)).toMatchObject({
      chat_id: -1001234567890,
      parse_mode: "MarkdownV2",
      link_preview_options: { is_disabled: true },
    } satisfies Partial<TelegramMessage>);
  });
});

describe("telegram answers", () => {
  const adapter = adapterFor("telegram");
  const payload = adapter.format(NOTICES.success);

  it("counts a 200 as delivered only with ok: true", async () => {
    const refusal = JSON.stringify({
      ok: false,
      error_code: 400,
      description: "Bad Request: chat not found",
    });
    const { send } = fakeSender(() => ({ statusCode: 200, body: refusal }));
    expect(await adapter.deliver(payload, send, 1000)).toEqual({
      delivered: false,
      retryable: false,
      statusCode: 200,
      error: "Telegram answered HTTP 200: Bad Request: chat not found",
    });
  });

  it("waits as long as a 429's parameters.retry_after says, without a Retry-After header", async () => {
    const body = JSON.stringify({
      ok: false,
      error_code: 429,
      description: "Too Many Requests: retry after 3",
      parameters: { retry_after: 3 },
    });
    const { send } = fakeSender(() => ({ statusCode: 429, body }));
    expect(await adapter.deliver(payload, send, 1000)).toMatchObject({ retryable: true, retryAfterMs: 3000 });
  });

  it("names the new chat id of a group that became a supergroup", async () => {
    const body = JSON.stringify({
      ok: false,
      error_code: 400,
      description: "Bad Request: group chat was upgraded to a supergroup chat",
      parameters: { migrate_to_chat_id: -1001234567890 },
    });
    const { send } = fakeSender(() => ({ statusCode: 400, body }));
    expect(await adapter.deliver(payload, send, 1000)).toMatchObject({
      retryable: false,
      error:
        "Telegram answered HTTP 400: Bad Request: group chat was upgraded to a supergroup chat (set chat_id to -1001234567890)",
    });
  });
});

describe("telegram against a local Bot API server", () => {
  const received: Array<{ url: string; body: unknown }> = [];
  const server = createServer(async (req: IncomingMessage, res) => {
    let raw = "";
    for await (const chunk of req) raw += chunk;
    received.push({ url: req.url ?? "", body: JSON.parse(raw) });
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ ok: true, result: { message_id: 7 } }));
  });
  let baseUrl = "";
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const send: HttpSender = async (payload, timeoutMs) => {
    const response = await request(payload.url, {
      method: "POST",
      headers: payload.headers,
      body: payload.body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { statusCode: response.statusCode, headers: response.headers, body: await response.body.text() };
  };

  it("delivers through the base URL it is given", async () => {
    const adapter = adapterFor("telegram", { telegramApiUrl: baseUrl });
    const outcome = await adapter.deliver(adapter.format(NOTICES.failure), send, 5000);
    expect(outcome).toEqual({ delivered: true, retryable: false, statusCode: 200 });
    expect(received).toEqual([
      {
        url: `/bot${CONFIGS.telegram.bot_token}/sendMessage`,
        body: expect.objectContaining({ chat_id: -1001234567890 }),
      },
    ]);
  });
});

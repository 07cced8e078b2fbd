import type { KnownBlock } from "@slack/types";
import { describe, expect, it } from "vitest";
import { SLACK_LIMITS, slackMessage } from "../../../src/delivery/adapters/slack.adapter.js";
import { adapterFor, fakeSender, NOTICES, notice } from "./adapter-fixtures.js";

/** Every text in the blocks, wherever Block Kit puts it. */
function textsOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(textsOf);
  if (typeof value !== "object" || value === null) return [];
  return Object.entries(value).flatMap(([key, child]) =>
    key === "text" && typeof child === "string" ? [child] : textsOf(child),
  );
}

/** The texts Slack parses as mrkdwn (plain_text, like the header's, is shown as it is). */
function mrkdwnTexts(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(mrkdwnTexts);
  if (typeof value !== "object" || value === null) return [];
  const { type, text } = value as { type?: unknown; text?: unknown };
  if (type === "mrkdwn" && typeof text === "string") return [text];
  return Object.values(value).flatMap(mrkdwnTexts);
}

const huge = notice({
  status: "failure",
  error: "E".repeat(10_000),
  agentName: "a".repeat(300),
  output: { text: "<&>".repeat(100_000) },
});

describe("slack adapter", () => {
  it("builds blocks that type-check as Block Kit", () => {
    // Checked by `npm run typecheck`: our block types must fit @slack/types.
    const blocks: KnownBlock[] = slackMessage(NOTICES.success).blocks;
    expect(blocks.map((block) => block.type)).toEqual([
      "header",
      "section",
      "divider",
      "section",
      "section",
      "actions",
      "context",
    ]);
  });

  it("has a header, status section, divider, details, error, button and context line", () => {
    const blocks: KnownBlock[] = slackMessage(NOTICES.failure).blocks;
    expect(blocks.map((block) => block.type)).toEqual([
      "header",
      "section",
      "divider",
      "section",
      "section",
      "actions",
      "context",
    ]);
    expect(JSON.stringify(blocks[1])).toContain("*Failed*");
    expect(JSON.stringify(blocks[4])).toContain("agent answered HTTP 502");
  });

  it("links the button to the invocation in the dashboard", () => {
    const actions = slackMessage(NOTICES.success).blocks.find((block) => block.type === "actions");
    expect(actions).toMatchObject({ elements: [{ type: "button", url: NOTICES.success.dashboardUrl }] });
  });

  it("has a plain-text fallback for notifications", () => {
    expect(slackMessage(NOTICES.timeout).text).toBe(
      "support-bot: Timed out (inv_01jc7s3bz8m0v4kx2g6wq9hfre)",
    );
  });

  it.each(Object.entries({ ...NOTICES, huge }))("respects Slack's limits for a %s notice", (_, n) => {
    const { text, blocks } = slackMessage(n);
    expect(blocks.length).toBeLessThanOrEqual(SLACK_LIMITS.blocks);
    expect(text.length).toBeLessThanOrEqual(SLACK_LIMITS.text);
    for (const t of textsOf(blocks)) expect(t.length).toBeLessThanOrEqual(SLACK_LIMITS.text);
    const header = blocks[0] as { text: { text: string } };
    expect(header.text.text.length).toBeLessThanOrEqual(SLACK_LIMITS.header);
    for (const block of blocks) {
      if ("fields" in block) {
        expect(block.fields.length).toBeLessThanOrEqual(SLACK_LIMITS.fields);
        for (const field of block.fields) expect(field.text.length).toBeLessThanOrEqual(SLACK_LIMITS.field);
      }
    }
  });

  it("cuts a huge output with an ellipsis inside its code block, never through an escape", () => {
    const output = slackMessage(huge).blocks.at(-3) as { text: { text: string } };
    expect(output.text.text).toMatch(/^```\n\{"text":"(&lt;&amp;&gt;)+(&lt;(&amp;)?)?…\n```$/);
  });

  it("escapes &, < and > in mrkdwn, so an agent's text cannot mention @channel or make links", () => {
    const message = slackMessage(notice({ agentName: "<!channel> bot", output: "<!here> & <https://x|y>" }));
    const mrkdwn = [message.text, ...message.blocks.flatMap(mrkdwnTexts)];
    for (const text of mrkdwn) expect(text).not.toMatch(/<!channel>|<!here>|<https/);
    expect(mrkdwn).toContain("&lt;!here&gt; &amp; &lt;https://x|y&gt;");
    expect(message.text).toContain("&lt;!channel&gt; bot");
  });

  it("shows the completion time in each reader's zone, with a fallback", () => {
    const context = slackMessage(NOTICES.success).blocks.at(-1);
    expect(JSON.stringify(context)).toContain(
      "<!date^1772366400^{date_short_pretty} {time}|2026-03-01T12:00:00.000Z>",
    );
  });

  it("needs Slack's 'ok' (or {ok: true}) to count a 200 as delivered", async () => {
    const adapter = adapterFor("slack");
    const payload = adapter.format(NOTICES.success);
    for (const [body, delivered] of [
      ["ok", true],
      ['{"ok":true}', true],
      ["", false],
      ['{"ok":false,"error":"invalid_blocks"}', false],
    ] as const) {
      const { send } = fakeSender(() => ({ statusCode: 200, body }));
      expect((await adapter.deliver(payload, send, 1000)).delivered).toBe(delivered);
    }
  });

  it("quotes Slack's error code", async () => {
    const adapter = adapterFor("slack");
    const { send } = fakeSender(() => ({ statusCode: 404, body: "no_service" }));
    expect(await adapter.deliver(adapter.format(NOTICES.success), send, 1000)).toMatchObject({
      retryable: false,
      error: "Slack answered HTTP 404: no_service",
    });
  });
});

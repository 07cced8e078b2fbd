import type { APIEmbed, RESTPostAPIWebhookWithTokenJSONBody } from "discord-api-types/v10";
import { describe, expect, it } from "vitest";
import { DISCORD_LIMITS, discordMessage } from "../../../src/delivery/adapters/discord.adapter.js";
import { ADAPTERS } from "../../../src/delivery/adapters/registry.js";
import { adapterFor, CONFIGS, CONTEXT, fakeSender, NOTICES, notice, parsedBody } from "./adapter-fixtures.js";

/** Discord's 6000 counts the title, description, field names and values, footer and author. */
function embedSize(embed: APIEmbed): number {
  const fields = (embed.fields ?? []).reduce((sum, field) => sum + field.name.length + field.value.length, 0);
  return (
    (embed.title?.length ?? 0) +
    (embed.description?.length ?? 0) +
    fields +
    (embed.footer?.text.length ?? 0) +
    (embed.author?.name.length ?? 0)
  );
}

function embedOf(message: RESTPostAPIWebhookWithTokenJSONBody): APIEmbed {
  const [embed] = message.embeds ?? [];
  if (!embed) throw new Error("no embed");
  return embed;
}

const huge = notice({
  status: "failure",
  agentName: "n".repeat(1000),
  error: "e".repeat(5000),
  output: { text: "x".repeat(1_000_000) },
  traceId: "t".repeat(3000),
});

describe("discord adapter", () => {
  it("builds a message that type-checks as a webhook body", () => {
    // Checked by `npm run typecheck`: our message type must fit discord-api-types.
    const message: RESTPostAPIWebhookWithTokenJSONBody = discordMessage(NOTICES.success, {
      username: "Steward",
    });
    expect(message.username).toBe("Steward");
    expect(message.embeds).toHaveLength(1);
  });

  it("sends one embed with title, status, colour, fields, footer, timestamp and link", () => {
    const body = parsedBody(
      adapterFor("discord").format(NOTICES.failure),
    ) as RESTPostAPIWebhookWithTokenJSONBody;
    expect(embedOf(body)).toEqual({
      title: "support-bot: Failed",
      description: "**Failed**",
      url: NOTICES.failure.dashboardUrl,
      color: 0xcf222e,
      fields: [
        { name: "Agent", value: "support-bot", inline: true },
        { name: "Invocation", value: "inv_01jc7s3bz8m0v4kx2g6wq9hfre", inline: true },
        { name: "Status", value: "Failed", inline: true },
        { name: "Duration", value: "1.2 s", inline: true },
        { name: "Completed", value: "2026-03-01 12:00:00 UTC", inline: true },
        { name: "Cost", value: "$0.0125", inline: true },
        { name: "Error", value: "agent answered HTTP 502", inline: false },
      ],
      footer: { text: "Steward · trace 4bf92f3577b34da6a3ce929d0e0e4736" },
      timestamp: "2026-03-01T12:00:00.000Z",
    });
    expect(body.username).toBe("Steward");
  });

  it.each([
    ["success", 0x1f883d],
    ["failure", 0xcf222e],
    ["timeout", 0xcf222e],
    ["policy_denied", 0xd4a72c],
    ["rate_limited", 0xd4a72c],
    ["budget_exceeded", 0xd4a72c],
  ])("colours a %s notice %s", (status, colour) => {
    expect(embedOf(discordMessage(notice({ status }), {})).color).toBe(colour);
  });

  it("shows object output as compact JSON in a code block", () => {
    expect(embedOf(discordMessage(NOTICES.success, {})).description).toBe(
      '**Succeeded**\n\n```\n{"answer":"Reset the router","confidence":0.93}\n```',
    );
  });

  it("keeps an output containing ``` from closing the code block early", () => {
    const description =
      embedOf(discordMessage(notice({ output: { md: "a ``` b ````` c" } }), {})).description ?? "";
    const inner = /```\n([\s\S]*)\n```$/.exec(description)?.[1];
    expect(inner).toContain("a `\u200b`` b `\u200b`\u200b`\u200b`` c");
    expect(inner).not.toContain("```");
  });

  it("lets nothing in the message ping anyone", () => {
    expect(discordMessage(NOTICES["success with text output"], {}).allowed_mentions).toEqual({ parse: [] });
  });

  it.each(Object.entries({ ...NOTICES, huge }))("respects every Discord limit for a %s notice", (_, n) => {
    const embed = embedOf(discordMessage(n, {}));
    expect(embed.title?.length).toBeLessThanOrEqual(DISCORD_LIMITS.title);
    expect(embed.description?.length).toBeLessThanOrEqual(DISCORD_LIMITS.description);
    expect(embed.fields?.length).toBeLessThanOrEqual(25);
    for (const field of embed.fields ?? []) {
      expect(field.name.length).toBeLessThanOrEqual(DISCORD_LIMITS.fieldName);
      expect(field.value.length).toBeGreaterThan(0);
      expect(field.value.length).toBeLessThanOrEqual(DISCORD_LIMITS.fieldValue);
    }
    expect(embed.footer?.text.length).toBeLessThanOrEqual(DISCORD_LIMITS.footer);
    expect(embedSize(embed)).toBeLessThanOrEqual(DISCORD_LIMITS.total);
  });

  it("cuts what is too long with an ellipsis, using the 6000 total to the full", () => {
    const embed = embedOf(discordMessage(huge, {}));
    expect(embed.title?.endsWith("…")).toBe(true);
    expect(embed.fields?.find((field) => field.name === "Error")?.value.endsWith("…")).toBe(true);
    expect(embed.description).toMatch(/x…\n```$/);
    expect(embedSize(embed)).toBeGreaterThan(DISCORD_LIMITS.total - 10);
  });

  it("asks Discord to confirm the message was saved, keeping the URL's own query", () => {
    const base = CONFIGS.discord.webhook_url as string;
    expect(adapterFor("discord").format(NOTICES.success).url).toBe(`${base}?wait=true`);
    const threaded = ADAPTERS.discord.create(
      { ...CONFIGS.discord, webhook_url: `${base}?thread_id=42` },
      CONTEXT,
    );
    expect(threaded.format(NOTICES.success).url).toBe(`${base}?thread_id=42&wait=true`);
  });

  it.each([
    "http://localhost:8080/lineage/inv_1",
    "http://steward:8080/lineage/inv_1",
    "http://127.0.0.1:8080/lineage/inv_1",
    "http://dev.localhost/lineage/inv_1",
  ])("leaves out a link Discord refuses the message for: %s", (dashboardUrl) => {
    expect(embedOf(discordMessage(notice({ dashboardUrl }), {}))).not.toHaveProperty("url");
  });

  it.each([
    [
      '{"message":"Invalid Form Body","code":50035,"errors":{"embeds":{"0":{"url":{"_errors":[{"code":"URL_TYPE_INVALID_URL","message":"Not a well formed URL."}]}}}}}',
      "Invalid Form Body (embeds.0.url: Not a well formed URL.)",
    ],
    ['{"embeds": ["0"]}', "refused embeds"],
    ['{"message":"Unknown Webhook","code":10015}', "Unknown Webhook"],
  ])("quotes what Discord refused from %s", async (body, reason) => {
    const adapter = adapterFor("discord");
    const { send } = fakeSender(() => ({ statusCode: 400, body }));
    expect(await adapter.deliver(adapter.format(NOTICES.success), send, 1000)).toMatchObject({
      retryable: false,
      error: `Discord answered HTTP 400: ${reason}`,
    });
  });

  it("waits as long as a 429's body says when no Retry-After came with it", async () => {
    const adapter = adapterFor("discord");
    const body = '{"message":"You are being rate limited.","retry_after":1.234,"global":false}';
    const { send } = fakeSender(() => ({ statusCode: 429, body }));
    expect(await adapter.deliver(adapter.format(NOTICES.success), send, 1000)).toMatchObject({
      retryable: true,
      retryAfterMs: 1234,
    });
  });
});

import Type from "typebox";
import type { AdapterDefinition, InvocationNotice } from "./adapter.js";
import { readConfig, STRICT, secret, text } from "./config-fields.js";
import { factsOf, headline, outputMarkdown, statusLabel, TONE_COLOURS, toneOf } from "./notice-text.js";
import { readAnswer } from "./platform-answer.js";
import { truncate } from "./truncate.js";

/** Discord, through a channel webhook: one embed per notice. */

const configSpec = {
  schema: Type.Object(
    {
      webhook_url: secret("Discord channel webhook URL"),
      username: Type.Optional(
        Type.String({ minLength: 1, maxLength: 80, description: "Overrides the webhook's name" }),
      ),
      avatar_url: Type.Optional(text("Overrides the webhook's avatar")),
    },
    STRICT,
  ),
  secretPaths: ["webhook_url"],
  urlFields: ["webhook_url", "avatar_url"],
};

/** Discord refuses an embed past any of these (https://discord.com/developers/docs/resources/message#embed-object-embed-limits). */
export const DISCORD_LIMITS = {
  title: 256,
  description: 4096,
  fieldName: 256,
  fieldValue: 1024,
  footer: 2048,
  /** Title, description, field names and values, and footer together. */
  total: 6000,
} as const;

interface DiscordEmbed {
  title: string;
  description: string;
  url: string;
  color: number;
  fields: Array<{ name: string; value: string; inline: boolean }>;
  footer: { text: string };
  timestamp: string;
}

export interface DiscordMessage {
  username?: string;
  avatar_url?: string;
  embeds: [DiscordEmbed];
  /** Nothing in an agent's output may ping @everyone or anyone else. */
  allowed_mentions: { parse: [] };
}

export function discordMessage(
  notice: InvocationNotice,
  identity: { username?: string; avatar_url?: string },
): DiscordMessage {
  const title = truncate(headline(notice), DISCORD_LIMITS.title);
  const footer = { text: truncate(`Steward · trace ${notice.traceId}`, DISCORD_LIMITS.footer) };
  const fields = factsOf(notice).map((fact) => ({
    name: truncate(fact.title, DISCORD_LIMITS.fieldName),
    value: truncate(fact.value, DISCORD_LIMITS.fieldValue),
    inline: fact.title !== "Error",
  }));
  const used =
    title.length + footer.text.length + fields.reduce((sum, f) => sum + f.name.length + f.value.length, 0);
  // The output gets whatever the 6000-character total leaves after everything else
  // (title, footer and fields take at most ~2,000 of it).
  const status = `**${statusLabel(notice.status)}**`;
  const room =
    Math.min(DISCORD_LIMITS.description, DISCORD_LIMITS.total - used) - status.length - "\n\n".length;
  const output = outputMarkdown(notice.output, room);
  const embed: DiscordEmbed = {
    title,
    description: output === "" ? status : `${status}\n\n${output}`,
    url: notice.dashboardUrl,
    color: TONE_COLOURS[toneOf(notice.status)],
    fields,
    footer,
    timestamp: notice.completedAt.toISOString(),
  };
  return { ...identity, embeds: [embed], allowed_mentions: { parse: [] } };
}

export const discordAdapter: AdapterDefinition = {
  configSpec,
  deliversTo: () => true,
  create(rawConfig, context) {
    const { webhook_url: url, username, avatar_url } = readConfig(configSpec, rawConfig);
    const identity = {
      ...(username === undefined ? {} : { username }),
      ...(avatar_url === undefined ? {} : { avatar_url }),
    };
    const now = context.now ?? (() => new Date());
    return {
      format: (notice) => ({
        url,
        headers: { "content-type": "application/json" },
        body: JSON.stringify(discordMessage(notice, identity)),
      }),
      async deliver(payload, send, timeoutMs) {
        return readAnswer(await send(payload, timeoutMs), { platform: "Discord", secrets: [url], now });
      },
    };
  },
};

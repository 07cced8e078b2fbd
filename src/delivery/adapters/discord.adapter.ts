import Type from "typebox";
import type { AdapterDefinition, HttpAnswer, InvocationNotice } from "./adapter.js";
import { readConfig, STRICT, secret, text } from "./config-fields.js";
import { factsOf, headline, outputMarkdown, statusLabel, TONE_COLOURS, toneOf } from "./notice-text.js";
import { parseJson, readAnswer } from "./platform-answer.js";
import { isShareableLink } from "./shareable-link.js";
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
  // https://discord.com/developers/docs/resources/webhook: names containing these are refused.
  refine: (config: Record<string, unknown>) =>
    typeof config.username === "string" && /discord|clyde/i.test(config.username)
      ? [{ field: "username", message: 'must not contain "discord" or "clyde", which Discord refuses' }]
      : [],
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
  /** The dashboard's page, when Discord takes it as a link (see isShareableLink). */
  url?: string;
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
    ...(isShareableLink(notice.dashboardUrl) ? { url: notice.dashboardUrl } : {}),
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
    // Without wait=true Discord answers 204 before saving the message, and a message it
    // then fails to save is lost without an error.
    const target = new URL(url);
    target.searchParams.set("wait", "true");
    const waitingUrl = target.toString();
    return {
      format: (notice) => ({
        url: waitingUrl,
        headers: { "content-type": "application/json" },
        body: JSON.stringify(discordMessage(notice, identity)),
      }),
      async deliver(payload, send, timeoutMs) {
        return readAnswer(await send(payload, timeoutMs), {
          platform: "Discord",
          secrets: [url, waitingUrl],
          now,
          reasonOf: discordReason,
          bodyRetryAfterMs: (answer) => {
            const seconds = (parseJson(answer.body) as { retry_after?: unknown } | undefined)?.retry_after;
            return typeof seconds === "number" && seconds >= 0 ? Math.ceil(seconds * 1000) : undefined;
          },
        });
      },
    };
  },
};

/**
 * Discord's reason: its message with the first field its validation refused
 * ("Invalid Form Body (embeds.0.url: Not a well formed URL.)"). Older API versions,
 * which unversioned webhook URLs get, name only the fields: {"embeds": ["0"]}.
 */
function discordReason(answer: HttpAnswer): string | undefined {
  const json = parseJson(answer.body);
  if (typeof json !== "object" || json === null || Array.isArray(json)) return undefined;
  const { message, errors, code: _code, ...fields } = json as Record<string, unknown>;
  if (typeof message !== "string") {
    const names = Object.keys(fields);
    return names.length > 0 ? `refused ${names.join(", ")}` : undefined;
  }
  const refused = firstFieldError(errors, "");
  return refused === undefined ? message : `${message} (${refused})`;
}

/** The path and message of the first `_errors` entry in Discord's nested `errors` object. */
function firstFieldError(errors: unknown, path: string): string | undefined {
  if (typeof errors !== "object" || errors === null) return undefined;
  const { _errors: own, ...children } = errors as Record<string, unknown>;
  const first = Array.isArray(own) ? (own[0] as { message?: unknown } | undefined) : undefined;
  if (typeof first?.message === "string") return path === "" ? first.message : `${path}: ${first.message}`;
  for (const [key, child] of Object.entries(children)) {
    const found = firstFieldError(child, path === "" ? key : `${path}.${key}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

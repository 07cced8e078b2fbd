import Type from "typebox";
import type { AdapterDefinition, HttpAnswer, InvocationNotice } from "./adapter.js";
import { readConfig, STRICT, secret, text } from "./config-fields.js";
import { durationText, headline, outputText, statusLabel } from "./notice-text.js";
import { parseJson, readAnswer, reasonOf } from "./platform-answer.js";
import { isShareableLink } from "./shareable-link.js";
import { truncate } from "./truncate.js";

/**
 * Telegram, through the Bot API's sendMessage, in MarkdownV2. The API's base URL is
 * STEWARD_TELEGRAM_API_URL (a self-hosted Bot API server, or a test double); the bot
 * token is part of the request path, so the URL is as secret as the token.
 */

const configSpec = {
  schema: Type.Object(
    {
      bot_token: secret("Bot API token from @BotFather"),
      chat_id: Type.Union([Type.Integer(), text("Chat id, or @channelusername")], {
        description: "Target chat id (integer) or @channelusername",
      }),
    },
    STRICT,
  ),
  secretPaths: ["bot_token"],
  urlFields: [],
  // The token goes into the request path: nothing but its own characters may reach it.
  refine: (config: Record<string, unknown>) =>
    /^\d+:[\w-]+$/.test(config.bot_token as string)
      ? []
      : [{ field: "bot_token", message: "must be a token as @BotFather gives it: <bot id>:<secret>" }],
};

/** Telegram's limit for a message's text. Counted here before entity parsing, so it is never exceeded. */
export const TELEGRAM_TEXT_LIMIT = 4096;
const MAX_HEADLINE = 512;
const MAX_ERROR = 1000;

/** https://core.telegram.org/bots/api#markdownv2-style: these must be escaped anywhere outside code. */
const RESERVED = /[_*[\]()~`>#+\-=|{}.!\\]/g;
/** Inside pre and code entities only ` and \ are special. */
const RESERVED_IN_CODE = /[`\\]/g;

/** `text` shown as written: every MarkdownV2 reserved character escaped. */
export function escapeMarkdownV2(text: string): string {
  return text.replace(RESERVED, "\\$&");
}

function escapeCode(text: string): string {
  return text.replace(RESERVED_IN_CODE, "\\$&");
}

const PRE_OPEN = "\n```\n";
const PRE_CLOSE = "\n```";

export interface TelegramMessage {
  chat_id: number | string;
  text: string;
  parse_mode: "MarkdownV2";
  link_preview_options: { is_disabled: true };
  reply_markup?: { inline_keyboard: [[{ text: string; url: string }]] };
}

export function telegramMessage(notice: InvocationNotice, chatId: number | string): TelegramMessage {
  const lines = [
    `*${truncate(headline(notice), MAX_HEADLINE, escapeMarkdownV2)}*`,
    escapeMarkdownV2(`Status: ${statusLabel(notice.status)} · Duration: ${durationText(notice.durationMs)}`),
    `Invocation: \`${escapeCode(notice.invocationId)}\``,
  ];
  if (notice.error) lines.push(`Error: ${truncate(notice.error, MAX_ERROR, escapeMarkdownV2)}`);
  let text = lines.join("\n");
  const output = outputText(notice.output);
  // The output, as a pre block, gets what the limit leaves.
  const room = TELEGRAM_TEXT_LIMIT - text.length - PRE_OPEN.length - PRE_CLOSE.length;
  if (output !== "" && room > 0) text += `${PRE_OPEN}${truncate(output, room, escapeCode)}${PRE_CLOSE}`;
  return {
    chat_id: chatId,
    text,
    parse_mode: "MarkdownV2",
    link_preview_options: { is_disabled: true },
    ...(isShareableLink(notice.dashboardUrl)
      ? { reply_markup: { inline_keyboard: [[{ text: "Open in Steward", url: notice.dashboardUrl }]] } }
      : {}),
  };
}

/**
 * Telegram's reason, with the chat's new id when a group became a supergroup: every
 * delivery to the old id fails until `chat_id` is changed to it.
 */
function telegramReason(answer: HttpAnswer): string | undefined {
  const reason = reasonOf(answer);
  const movedTo = botAnswer(answer).parameters?.migrate_to_chat_id;
  return typeof movedTo === "number" ? `${reason ?? "chat moved"} (set chat_id to ${movedTo})` : reason;
}

/** Every Bot API answer is JSON with `ok`; a 429 says how long to wait in `parameters.retry_after`. */
function botAnswer(answer: HttpAnswer): {
  ok?: unknown;
  parameters?: { retry_after?: unknown; migrate_to_chat_id?: unknown };
} {
  const json = parseJson(answer.body);
  return typeof json === "object" && json !== null ? json : {};
}

export const telegramAdapter: AdapterDefinition = {
  configSpec,
  deliversTo: () => true,
  create(rawConfig, context) {
    const { bot_token: token, chat_id: chatId } = readConfig(configSpec, rawConfig);
    const url = `${context.telegramApiUrl.replace(/\/+$/, "")}/bot${token}/sendMessage`;
    const now = context.now ?? (() => new Date());
    return {
      format: (notice) => ({
        url,
        headers: { "content-type": "application/json" },
        body: JSON.stringify(telegramMessage(notice, chatId)),
      }),
      async deliver(payload, send, timeoutMs) {
        return readAnswer(await send(payload, timeoutMs), {
          platform: "Telegram",
          secrets: [token, url],
          now,
          accepts: (answer) => botAnswer(answer).ok === true,
          reasonOf: telegramReason,
          bodyRetryAfterMs: (answer) => {
            const seconds = botAnswer(answer).parameters?.retry_after;
            return typeof seconds === "number" && seconds >= 0 ? seconds * 1000 : undefined;
          },
        });
      },
    };
  },
};

import Type from "typebox";
import type { Platform } from "./agent-kinds.js";
import { type ConfigSpec, HEADER_NAME_PATTERN } from "./config-schema.js";

/**
 * Where an agent's results are delivered: one schema per platform. Webhook URLs of
 * chat platforms embed their own access token, so they are treated as secrets.
 */

const text = (description: string) => Type.String({ minLength: 1, maxLength: 2048, description });
const secret = (description: string) => Type.String({ minLength: 1, maxLength: 8192, description });
const strict = { additionalProperties: false } as const;

export const PLATFORM_CONFIG_SPECS: Record<Platform, ConfigSpec> = {
  teams: {
    schema: Type.Object(
      {
        tenant_id: text("Microsoft Entra tenant id"),
        channel_id: text("Teams channel id"),
        webhook_url: Type.Optional(secret("Teams Workflows / incoming webhook URL used for delivery")),
      },
      strict,
    ),
    secretPaths: ["webhook_url"],
    urlFields: ["webhook_url"],
  },
  discord: {
    schema: Type.Object(
      {
        webhook_url: secret("Discord channel webhook URL"),
        username: Type.Optional(
          Type.String({ minLength: 1, maxLength: 80, description: "Overrides the webhook's name" }),
        ),
        avatar_url: Type.Optional(text("Overrides the webhook's avatar")),
      },
      strict,
    ),
    secretPaths: ["webhook_url"],
    urlFields: ["webhook_url", "avatar_url"],
  },
  slack: {
    schema: Type.Object(
      { webhook_url: secret("Slack incoming webhook URL"), channel: text("Channel the webhook posts to") },
      strict,
    ),
    secretPaths: ["webhook_url"],
    urlFields: ["webhook_url"],
  },
  telegram: {
    schema: Type.Object(
      {
        bot_token: secret("Bot API token from @BotFather"),
        chat_id: Type.Union([Type.Integer(), text("Chat id, or @channelusername")], {
          description: "Target chat id (integer) or @channelusername",
        }),
      },
      strict,
    ),
    secretPaths: ["bot_token"],
    urlFields: [],
  },
  notion: {
    schema: Type.Object(
      { token: secret("Notion integration token"), database_id: text("Database results are written to") },
      strict,
    ),
    secretPaths: ["token"],
    urlFields: [],
  },
  custom_http: {
    schema: Type.Object(
      {
        webhook_url: Type.Optional(secret("URL results are POSTed to")),
        headers: Type.Optional(
          Type.Record(Type.String({ pattern: HEADER_NAME_PATTERN }), secret("Header value"), {
            additionalProperties: false,
            maxProperties: 50,
          }),
        ),
      },
      strict,
    ),
    secretPaths: ["webhook_url", "headers.*"],
    urlFields: ["webhook_url"],
  },
};

import Type from "typebox";
import type { AdapterDefinition, InvocationNotice } from "./adapter.js";
import { readConfig, STRICT, secret, text } from "./config-fields.js";
import { factsOf, headline, hexColour, outputMarkdown, toneOf, utcText } from "./notice-text.js";
import { readAnswer } from "./platform-answer.js";
import { truncate } from "./truncate.js";

/** Mattermost, through an incoming webhook: one message attachment per notice. */

const configSpec = {
  schema: Type.Object(
    {
      webhook_url: secret("Mattermost incoming webhook URL"),
      channel: Type.Optional(text("Channel name (or @username) overriding the webhook's default channel")),
      username: Type.Optional(text("Overrides the webhook's user name, if the server allows it")),
      icon_url: Type.Optional(text("Overrides the webhook's profile picture, if the server allows it")),
    },
    STRICT,
  ),
  secretPaths: ["webhook_url"],
  urlFields: ["webhook_url", "icon_url"],
};

/** Mattermost stores at most 16,383 characters per post; the attachment keeps well below. */
export const MATTERMOST_LIMITS = { text: 4000, fieldValue: 1000, title: 256 } as const;

export interface MattermostMessage {
  channel?: string;
  username?: string;
  icon_url?: string;
  attachments: [
    {
      fallback: string;
      color: string;
      title: string;
      title_link: string;
      text: string;
      fields: Array<{ title: string; value: string; short: boolean }>;
      footer: string;
    },
  ];
}

export function mattermostMessage(
  notice: InvocationNotice,
  overrides: Pick<MattermostMessage, "channel" | "username" | "icon_url">,
): MattermostMessage {
  const title = truncate(headline(notice), MATTERMOST_LIMITS.title);
  return {
    ...overrides,
    attachments: [
      {
        fallback: `${title} (${notice.invocationId})`,
        color: hexColour(toneOf(notice.status)),
        title,
        title_link: notice.dashboardUrl,
        text: outputMarkdown(notice.output, MATTERMOST_LIMITS.text),
        fields: factsOf(notice).map((fact) => ({
          title: fact.title,
          value: truncate(fact.value, MATTERMOST_LIMITS.fieldValue),
          short: fact.title !== "Error",
        })),
        footer: `Steward · ${utcText(notice.completedAt)} · trace ${notice.traceId}`,
      },
    ],
  };
}

export const mattermostAdapter: AdapterDefinition = {
  configSpec,
  deliversTo: () => true,
  create(rawConfig, context) {
    const { webhook_url: url, ...overrides } = readConfig(configSpec, rawConfig);
    const now = context.now ?? (() => new Date());
    return {
      format: (notice) => ({
        url,
        headers: { "content-type": "application/json" },
        body: JSON.stringify(mattermostMessage(notice, overrides)),
      }),
      async deliver(payload, send, timeoutMs) {
        return readAnswer(await send(payload, timeoutMs), { platform: "Mattermost", secrets: [url], now });
      },
    };
  },
};

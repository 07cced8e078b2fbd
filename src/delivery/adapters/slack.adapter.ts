import Type from "typebox";
import type { AdapterDefinition, InvocationNotice } from "./adapter.js";
import { readConfig, STRICT, secret, text } from "./config-fields.js";
import { factsOf, headline, outputMarkdown, statusLabel, toneOf } from "./notice-text.js";
import { parseJson, readAnswer } from "./platform-answer.js";
import { truncate } from "./truncate.js";

/** Slack, through an incoming webhook: Block Kit with a plain-text fallback. */

const configSpec = {
  schema: Type.Object(
    {
      webhook_url: secret("Slack incoming webhook URL"),
      channel: text("Channel the webhook posts to (informational: the webhook decides)"),
    },
    STRICT,
  ),
  secretPaths: ["webhook_url"],
  urlFields: ["webhook_url"],
};

/** https://docs.slack.dev/reference/block-kit/blocks */
export const SLACK_LIMITS = {
  blocks: 50,
  text: 3000,
  header: 150,
  field: 2000,
  fields: 10,
} as const;

type PlainText = { type: "plain_text"; text: string; emoji?: boolean };
type Mrkdwn = { type: "mrkdwn"; text: string };
type SlackBlock =
  | { type: "header"; text: PlainText }
  | { type: "section"; text: Mrkdwn }
  | { type: "section"; fields: Mrkdwn[] }
  | { type: "divider" }
  | { type: "actions"; elements: [{ type: "button"; text: PlainText; url: string; action_id: string }] }
  | { type: "context"; elements: Mrkdwn[] };

export interface SlackMessage {
  /** Shown in notifications and by clients that cannot render blocks. */
  text: string;
  blocks: SlackBlock[];
}

const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;" };

/** Slack reads <…> as links and mentions (<!channel>); escaped, an agent's text stays text. */
export function escapeMrkdwn(char: string): string {
  return ENTITIES[char] ?? char;
}

const mrkdwn = (value: string, max: number = SLACK_LIMITS.text): Mrkdwn => ({
  type: "mrkdwn",
  text: truncate(value, max, escapeMrkdwn),
});

const STATUS_EMOJI = {
  success: ":large_green_circle:",
  failure: ":red_circle:",
  refusal: ":large_yellow_circle:",
};

export function slackMessage(notice: InvocationNotice): SlackMessage {
  const title = headline(notice);
  const facts = factsOf(notice).filter((fact) => fact.title !== "Error");
  const seconds = Math.floor(notice.completedAt.getTime() / 1000);
  const blocks: SlackBlock[] = [
    {
      type: "header",
      text: { type: "plain_text", text: truncate(title, SLACK_LIMITS.header), emoji: false },
    },
    {
      type: "section",
      text: {
        type: "mrkdwn",
        text: `${STATUS_EMOJI[toneOf(notice.status)]} *${statusLabel(notice.status)}*`,
      },
    },
    { type: "divider" },
    {
      type: "section",
      fields: facts.map((fact) => mrkdwn(`*${fact.title}*\n${fact.value}`, SLACK_LIMITS.field)),
    },
  ];
  if (notice.error) blocks.push({ type: "section", text: mrkdwn(`*Error*\n${notice.error}`) });
  const output = outputMarkdown(notice.output, SLACK_LIMITS.text, escapeMrkdwn);
  if (output !== "") blocks.push({ type: "section", text: { type: "mrkdwn", text: output } });
  blocks.push(
    {
      type: "actions",
      elements: [
        {
          type: "button",
          text: { type: "plain_text", text: "Open in Steward" },
          url: notice.dashboardUrl,
          action_id: "open_invocation",
        },
      ],
    },
    {
      type: "context",
      elements: [
        // <!date^…> shows the time in each reader's own zone; the text after | is for old clients.
        {
          type: "mrkdwn",
          text: `Completed <!date^${seconds}^{date_short_pretty} {time}|${notice.completedAt.toISOString()}> · trace ${notice.traceId}`,
        },
      ],
    },
  );
  // The fallback is mrkdwn too, and is what notifications show: escaped like the rest.
  return { text: truncate(`${title} (${notice.invocationId})`, SLACK_LIMITS.text, escapeMrkdwn), blocks };
}

/** Incoming webhooks answer "ok"; workflow webhooks answer `{"ok": true}`. */
function acceptedBySlack(body: string): boolean {
  if (body.trim() === "ok") return true;
  const json = parseJson(body);
  return typeof json === "object" && json !== null && (json as { ok?: unknown }).ok === true;
}

export const slackAdapter: AdapterDefinition = {
  configSpec,
  deliversTo: () => true,
  create(rawConfig, context) {
    const { webhook_url: url } = readConfig(configSpec, rawConfig);
    const now = context.now ?? (() => new Date());
    return {
      format: (notice) => ({
        url,
        headers: { "content-type": "application/json" },
        body: JSON.stringify(slackMessage(notice)),
      }),
      async deliver(payload, send, timeoutMs) {
        return readAnswer(await send(payload, timeoutMs), {
          platform: "Slack",
          secrets: [url],
          now,
          accepts: (answer) => acceptedBySlack(answer.body),
        });
      },
    };
  },
};

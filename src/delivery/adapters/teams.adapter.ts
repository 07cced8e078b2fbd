import Type from "typebox";
import {
  type AdapterDefinition,
  type HttpAnswer,
  type InvocationNotice,
  PlatformConfigError,
} from "./adapter.js";
import { readConfig, STRICT, secret, text } from "./config-fields.js";
import { factsOf, headline, outputText, type Tone, toneOf } from "./notice-text.js";
import { type ReportedFailure, readAnswer } from "./platform-answer.js";
import { truncate } from "./truncate.js";

/**
 * Microsoft Teams, through a Workflows (or legacy incoming webhook) URL: one Adaptive
 * Card in a message attachment. Without a webhook URL the agent is registered for
 * Teams but nothing is delivered.
 */

const configSpec = {
  schema: Type.Object(
    {
      tenant_id: text("Microsoft Entra tenant id"),
      channel_id: text("Teams channel id"),
      webhook_url: Type.Optional(secret("Teams Workflows / incoming webhook URL used for delivery")),
    },
    STRICT,
  ),
  secretPaths: ["webhook_url"],
  urlFields: ["webhook_url"],
};

/** Teams refuses messages over ~28 KB; these caps keep a card well below that. */
const MAX_OUTPUT = 4000;
const MAX_FACT = 1000;

/** Adaptive Card container styles and text colours, per tone. */
const STYLES: Record<Tone, { container: string; color: string }> = {
  success: { container: "good", color: "Good" },
  failure: { container: "attention", color: "Attention" },
  refusal: { container: "warning", color: "Warning" },
};

/** The card (Adaptive Card schema 1.5) for one notice. */
export function teamsCard(notice: InvocationNotice): Record<string, unknown> {
  const style = STYLES[toneOf(notice.status)];
  const output = outputText(notice.output);
  const body: Record<string, unknown>[] = [
    {
      type: "Container",
      style: style.container,
      bleed: true,
      items: [
        {
          type: "TextBlock",
          text: headline(notice),
          size: "Large",
          weight: "Bolder",
          color: style.color,
          wrap: true,
        },
      ],
    },
    {
      type: "FactSet",
      facts: factsOf(notice).map((fact) => ({ title: fact.title, value: truncate(fact.value, MAX_FACT) })),
    },
  ];
  if (output !== "") {
    body.push({ type: "TextBlock", text: truncate(output, MAX_OUTPUT), wrap: true, fontType: "Monospace" });
  }
  return {
    $schema: "http://adaptivecards.io/schemas/adaptive-card.json",
    type: "AdaptiveCard",
    version: "1.5",
    body,
    actions: [{ type: "Action.OpenUrl", title: "Open", url: notice.dashboardUrl }],
    msteams: { width: "Full" },
  };
}

export const teamsAdapter: AdapterDefinition = {
  configSpec,
  deliversTo: (config) => typeof config.webhook_url === "string",
  create(rawConfig, context) {
    const url = readConfig(configSpec, rawConfig).webhook_url;
    if (url === undefined)
      throw new PlatformConfigError("platform_config.webhook_url", "is not set: nothing to deliver to");
    const now = context.now ?? (() => new Date());
    return {
      format(notice) {
        const message = {
          type: "message",
          attachments: [
            {
              contentType: "application/vnd.microsoft.card.adaptive",
              contentUrl: null,
              content: teamsCard(notice),
            },
          ],
        };
        return {
          url,
          headers: { "content-type": "application/json" },
          body: JSON.stringify(message),
        };
      },
      async deliver(payload, send, timeoutMs) {
        return readAnswer(await send(payload, timeoutMs), {
          platform: "Teams",
          secrets: [url],
          now,
          failureIn2xx: legacyConnectorFailure,
        });
      },
    };
  },
};

/**
 * A legacy Office 365 connector answers 200 even when Teams refused the message, with
 * "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP
 * error 429 …" as its body (success is the body "1"; Workflows answer 202). The status
 * it names decides whether a retry can help; a failure naming none is retried.
 */
function legacyConnectorFailure(answer: HttpAnswer): ReportedFailure | undefined {
  const body = answer.body.trim();
  if (!/^webhook message delivery failed/i.test(body)) return undefined;
  const named = /returned HTTP error (\d{3})/i.exec(body)?.[1];
  return { statusCode: named === undefined ? 502 : Number(named), reason: body.replace(/\s+/g, " ") };
}

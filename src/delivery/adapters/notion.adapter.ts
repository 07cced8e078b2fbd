import Type from "typebox";
import type { AdapterDefinition, InvocationNotice } from "./adapter.js";
import { readConfig, STRICT, secret, text } from "./config-fields.js";
import { outputText, statusLabel } from "./notice-text.js";
import { readAnswer } from "./platform-answer.js";
import { truncate } from "./truncate.js";

/**
 * Notion: one page per invocation in a database, created with POST /v1/pages. The
 * API's base URL is STEWARD_NOTION_API_URL. The database needs the properties named
 * in `notionPage` (see docs/platforms.md); Notion refuses a page with a missing one.
 */

const configSpec = {
  schema: Type.Object(
    {
      token: secret("Notion integration token"),
      database_id: text("Id of the database results are written to: 32 hexadecimal digits"),
    },
    STRICT,
  ),
  secretPaths: ["token"],
  urlFields: [],
  refine: (config: Record<string, unknown>) =>
    NOTION_ID.test(config.database_id as string)
      ? []
      : [
          {
            field: "database_id",
            message: "must be the database's id, 32 hexadecimal digits with or without hyphens, not its URL",
          },
        ],
};

/** A Notion object id: a UUID, with or without its hyphens. */
const NOTION_ID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/**
 * Pinned: the newest versions address databases by data source, and a page's shape
 * must not change under an operator who upgrades Steward.
 */
export const NOTION_VERSION = "2022-06-28";
/** Notion's limit for the content of one rich text object. */
export const NOTION_TEXT_LIMIT = 2000;

type RichText = Array<{ type: "text"; text: { content: string; link?: { url: string } } }>;

const richText = (content: string, link?: string): RichText => [
  {
    type: "text",
    text: { content: truncate(content, NOTION_TEXT_LIMIT), ...(link ? { link: { url: link } } : {}) },
  },
];

export interface NotionPageRequest {
  parent: { database_id: string };
  properties: {
    Name: { title: RichText };
    Status: { select: { name: string } };
    Agent: { rich_text: RichText };
    Invocation: { rich_text: RichText };
    "Duration ms": { number: number | null };
    Invoked: { date: { start: string } };
    Completed: { date: { start: string } };
    Error: { rich_text: RichText };
  };
  children: Array<{
    object: "block";
    type: "code";
    code: { language: "json" | "plain text"; rich_text: RichText };
  }>;
}

export function notionPage(notice: InvocationNotice, databaseId: string): NotionPageRequest {
  const output = outputText(notice.output);
  return {
    parent: { database_id: databaseId },
    properties: {
      Name: { title: richText(`${notice.agentName} · ${notice.invocationId}`) },
      // Notion creates a missing select option on first use, so any status is accepted.
      Status: { select: { name: statusLabel(notice.status) } },
      Agent: { rich_text: richText(notice.agentName) },
      Invocation: { rich_text: richText(notice.invocationId, notice.dashboardUrl) },
      "Duration ms": { number: notice.durationMs },
      Invoked: { date: { start: notice.createdAt.toISOString() } },
      Completed: { date: { start: notice.completedAt.toISOString() } },
      Error: { rich_text: notice.error ? richText(notice.error) : [] },
    },
    children:
      output === ""
        ? []
        : [
            {
              object: "block",
              type: "code",
              code: {
                language: typeof notice.output === "string" ? "plain text" : "json",
                rich_text: richText(output),
              },
            },
          ],
  };
}

export const notionAdapter: AdapterDefinition = {
  configSpec,
  deliversTo: () => true,
  create(rawConfig, context) {
    const { token, database_id: databaseId } = readConfig(configSpec, rawConfig);
    const url = `${context.notionApiUrl.replace(/\/+$/, "")}/v1/pages`;
    const now = context.now ?? (() => new Date());
    return {
      format: (notice) => ({
        url,
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${token}`,
          "notion-version": NOTION_VERSION,
        },
        body: JSON.stringify(notionPage(notice, databaseId)),
      }),
      async deliver(payload, send, timeoutMs) {
        return readAnswer(await send(payload, timeoutMs), {
          platform: "Notion",
          secrets: [token],
          now,
          // "conflict_error: … try again" (https://developers.notion.com/reference/status-codes)
          alsoRetryable: [409],
        });
      },
    };
  },
};

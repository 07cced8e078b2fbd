import type { CreatePageParameters } from "@notionhq/client";
import { describe, expect, it } from "vitest";
import {
  NOTION_TEXT_LIMIT,
  NOTION_VERSION,
  notionPage,
} from "../../../src/delivery/adapters/notion.adapter.js";
import { adapterFor, CONFIGS, fakeSender, NOTICES, notice, parsedBody } from "./adapter-fixtures.js";

const DATABASE = CONFIGS.notion.database_id as string;

/** Every rich text content in a request, wherever it is. */
function contents(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(contents);
  if (typeof value !== "object" || value === null) return [];
  const { content } = value as { content?: unknown };
  return typeof content === "string" ? [content] : Object.values(value).flatMap(contents);
}

describe("notion adapter", () => {
  it("builds a request that type-checks as the client's CreatePageParameters", () => {
    // Checked by `npm run typecheck`: our request type must fit @notionhq/client.
    const request: CreatePageParameters = notionPage(NOTICES.failure, DATABASE);
    expect(request.parent).toEqual({ database_id: DATABASE });
  });

  it("posts to {STEWARD_NOTION_API_URL}/v1/pages with the token and a pinned Notion-Version", () => {
    const payload = adapterFor("notion", { notionApiUrl: "http://127.0.0.1:9000" }).format(NOTICES.success);
    expect(payload.url).toBe("http://127.0.0.1:9000/v1/pages");
    expect(payload.headers).toEqual({
      "content-type": "application/json",
      authorization: `Bearer ${CONFIGS.notion.token}`,
      "notion-version": NOTION_VERSION,
    });
  });

  it("fills the database's properties", () => {
    expect(parsedBody(adapterFor("notion").format(NOTICES.failure)).properties).toEqual({
      Name: { title: [{ type: "text", text: { content: "support-bot · inv_01jc7s3bz8m0v4kx2g6wq9hfre" } }] },
      Status: { select: { name: "Failed" } },
      Agent: { rich_text: [{ type: "text", text: { content: "support-bot" } }] },
      Invocation: {
        rich_text: [
          {
            type: "text",
            text: { content: "inv_01jc7s3bz8m0v4kx2g6wq9hfre", link: { url: NOTICES.failure.dashboardUrl } },
          },
        ],
      },
      "Duration ms": { number: 1234 },
      Invoked: { date: { start: "2026-03-01T11:59:58.766Z" } },
      Completed: { date: { start: "2026-03-01T12:00:00.000Z" } },
      Error: { rich_text: [{ type: "text", text: { content: "agent answered HTTP 502" } }] },
    });
  });

  it("leaves Error empty and Duration null when there are none", () => {
    const { properties } = notionPage(notice({ error: null, durationMs: null }), DATABASE);
    expect(properties.Error).toEqual({ rich_text: [] });
    expect(properties["Duration ms"]).toEqual({ number: null });
  });

  it("writes the output into the page as a code block: JSON for objects, plain text for text", () => {
    expect(notionPage(NOTICES.success, DATABASE).children).toEqual([
      {
        object: "block",
        type: "code",
        code: {
          language: "json",
          rich_text: [{ type: "text", text: { content: '{"answer":"Reset the router","confidence":0.93}' } }],
        },
      },
    ]);
    expect(notionPage(notice({ output: "done" }), DATABASE).children[0]?.code.language).toBe("plain text");
    expect(notionPage(notice({ output: null }), DATABASE).children).toEqual([]);
  });

  it("keeps every text within Notion's 2000 characters, cut with an ellipsis", () => {
    const request = notionPage(
      notice({ error: "e".repeat(5000), agentName: "a".repeat(3000), output: { x: "y".repeat(10_000) } }),
      DATABASE,
    );
    const texts = contents(request);
    for (const text of texts) expect(text.length).toBeLessThanOrEqual(NOTION_TEXT_LIMIT);
    expect(request.properties.Error.rich_text[0]?.text.content).toBe(`${"e".repeat(NOTION_TEXT_LIMIT - 1)}…`);
  });

  it("quotes Notion's error message", async () => {
    const adapter = adapterFor("notion");
    const body = JSON.stringify({
      object: "error",
      status: 400,
      code: "validation_error",
      message: "Status is expected to be select.",
    });
    const { send } = fakeSender(() => ({ statusCode: 400, body }));
    expect((await adapter.deliver(adapter.format(NOTICES.success), send, 1000)).error).toBe(
      "Notion answered HTTP 400: Status is expected to be select.",
    );
  });

  it("retries a conflict, as Notion asks", async () => {
    const adapter = adapterFor("notion");
    const body = JSON.stringify({
      object: "error",
      status: 409,
      code: "conflict_error",
      message: "Conflict occurred while saving. Please try again.",
    });
    const { send } = fakeSender(() => ({ statusCode: 409, body }));
    expect(await adapter.deliver(adapter.format(NOTICES.success), send, 1000)).toMatchObject({
      delivered: false,
      retryable: true,
      statusCode: 409,
    });
  });
});

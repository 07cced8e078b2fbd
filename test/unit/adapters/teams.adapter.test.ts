import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { PlatformConfigError } from "../../../src/delivery/adapters/adapter.js";
import { teamsAdapter, teamsCard } from "../../../src/delivery/adapters/teams.adapter.js";
import { adapterFor, CONFIGS, CONTEXT, fakeSender, NOTICES, notice, parsedBody } from "./adapter-fixtures.js";

// The package's ESM build imports its modules without file extensions, which Node
// cannot resolve; its UMD bundle is the same library.
const AdaptiveCards = createRequire(import.meta.url)(
  "adaptivecards/dist/adaptivecards.js",
) as typeof import("adaptivecards");

/** Every problem the Adaptive Cards library finds parsing and validating `json`. */
function cardProblems(json: unknown): string[] {
  const card = new AdaptiveCards.AdaptiveCard();
  const context = new AdaptiveCards.SerializationContext();
  card.parse(json, context);
  const problems = Array.from({ length: context.eventCount }, (_, i) => context.getEventAt(i).message);
  return [...problems, ...card.validateProperties().validationEvents.map((event) => event.message)];
}

type Card = {
  version: string;
  body: Array<Record<string, unknown>>;
  actions: Array<Record<string, unknown>>;
};
const card = (n = NOTICES.success) => teamsCard(n) as unknown as Card;
function facts(c: Card): Record<string, string> {
  const factSet = c.body.find((element) => element.type === "FactSet") as {
    facts: Array<{ title: string; value: string }>;
  };
  return Object.fromEntries(factSet.facts.map((fact) => [fact.title, fact.value]));
}

describe("teams adapter", () => {
  it.each(Object.entries(NOTICES))("the card for a %s notice parses without a single warning", (_, n) => {
    expect(cardProblems(teamsCard(n))).toEqual([]);
  });

  it("(the check itself) finds the faults of a broken card", () => {
    expect(
      cardProblems({ type: "AdaptiveCard", version: "1.5", body: [{ type: "TextBlock", color: "Neon" }] }),
    ).not.toEqual([]);
  });

  it("sends the card as a message attachment of the Adaptive Card type", () => {
    const body = parsedBody(adapterFor("teams").format(NOTICES.failure));
    expect(body).toMatchObject({
      type: "message",
      attachments: [
        { contentType: "application/vnd.microsoft.card.adaptive", content: { type: "AdaptiveCard" } },
      ],
    });
  });

  it("uses schema version 1.5", () => {
    expect(card().version).toBe("1.5");
  });

  it.each([
    ["success", "good", "Good"],
    ["failure", "attention", "Attention"],
    ["timeout", "attention", "Attention"],
    ["policy_denied", "warning", "Warning"],
    ["rate_limited", "warning", "Warning"],
    ["budget_exceeded", "warning", "Warning"],
  ])("colours a %s notice %s", (status, style, color) => {
    const header = card(notice({ status })).body[0] as { style: string; items: Array<{ color: string }> };
    expect(header.style).toBe(style);
    expect(header.items[0]?.color).toBe(color);
  });

  it("lists agent, invocation, status, duration, time and error as facts", () => {
    expect(facts(card(NOTICES.failure))).toEqual({
      Agent: "support-bot",
      Invocation: "inv_01jc7s3bz8m0v4kx2g6wq9hfre",
      Status: "Failed",
      Duration: "1.2 s",
      Completed: "2026-03-01 12:00:00 UTC",
      Cost: "$0.0125",
      Error: "agent answered HTTP 502",
    });
  });

  it("has an Open action linking to the invocation in the dashboard", () => {
    expect(card().actions).toEqual([
      { type: "Action.OpenUrl", title: "Open", url: NOTICES.success.dashboardUrl },
    ]);
  });

  it("shows object output as compact JSON", () => {
    expect(JSON.stringify(card().body)).toContain(
      JSON.stringify(JSON.stringify(NOTICES.success.output)).slice(1, -1),
    );
  });

  it("cuts a huge output with an ellipsis and stays a valid card", () => {
    const huge = card(notice({ output: "y".repeat(50_000) }));
    const output = huge.body.at(-1) as { text: string };
    expect(output.text.length).toBeLessThanOrEqual(4000);
    expect(output.text.endsWith("…")).toBe(true);
    expect(cardProblems(huge)).toEqual([]);
  });

  it("has no destination without a webhook URL, and refuses to be created for one", () => {
    const { webhook_url: _, ...withoutUrl } = CONFIGS.teams;
    expect(teamsAdapter.deliversTo(withoutUrl)).toBe(false);
    expect(() => teamsAdapter.create(withoutUrl, CONTEXT)).toThrow(PlatformConfigError);
  });

  describe("a legacy connector's 200 that reports a failure", () => {
    const failed = (status: number) =>
      `Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error ${status} with ContextId tcid=0,server=msgapi-production-eus-azsc2-4-170,cv=deadbeef.0..`;

    it.each([
      [429, true],
      [502, true],
      [400, false],
      [413, false],
    ])("is not delivered when it names HTTP %i, and retried: %s", async (reported, retryable) => {
      const adapter = adapterFor("teams");
      const { send } = fakeSender(() => ({ statusCode: 200, body: failed(reported) }));
      const outcome = await adapter.deliver(adapter.format(NOTICES.success), send, 1000);
      expect(outcome).toMatchObject({ delivered: false, retryable, statusCode: 200 });
      expect(outcome.error).toMatch(
        new RegExp(`^Teams answered HTTP 200 reporting HTTP ${reported}: Webhook message delivery failed`),
      );
    });

    it.each([
      ["the legacy confirmation", 200, "1"],
      ["a Workflows acceptance", 202, ""],
    ])("leaves %s delivered", async (_, statusCode, body) => {
      const adapter = adapterFor("teams");
      const { send } = fakeSender(() => ({ statusCode, body }));
      expect((await adapter.deliver(adapter.format(NOTICES.success), send, 1000)).delivered).toBe(true);
    });
  });
});

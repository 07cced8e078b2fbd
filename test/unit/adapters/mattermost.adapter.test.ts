import { describe, expect, it } from "vitest";
import { validateConfig } from "../../../src/agents/config-schema.js";
import {
  MATTERMOST_LIMITS,
  mattermostAdapter,
  mattermostMessage,
} from "../../../src/delivery/adapters/mattermost.adapter.js";
import { adapterFor, CONFIGS, CONTEXT, NOTICES, notice, parsedBody } from "./adapter-fixtures.js";

describe("mattermost adapter", () => {
  it("posts one attachment with colour, title linking to the dashboard, facts and footer", () => {
    expect(parsedBody(adapterFor("mattermost").format(NOTICES.failure))).toEqual({
      channel: "town-square",
      attachments: [
        {
          fallback: "support-bot: Failed (inv_01jc7s3bz8m0v4kx2g6wq9hfre)",
          color: "#cf222e",
          title: "support-bot: Failed",
          title_link: NOTICES.failure.dashboardUrl,
          text: "",
          fields: [
            { title: "Agent", value: "support-bot", short: true },
            { title: "Invocation", value: "inv_01jc7s3bz8m0v4kx2g6wq9hfre", short: true },
            { title: "Status", value: "Failed", short: true },
            { title: "Duration", value: "1.2 s", short: true },
            { title: "Completed", value: "2026-03-01 12:00:00 UTC", short: true },
            { title: "Cost", value: "$0.0125", short: true },
            { title: "Error", value: "agent answered HTTP 502", short: false },
          ],
          footer: "Steward · 2026-03-01 12:00:00 UTC · trace 4bf92f3577b34da6a3ce929d0e0e4736",
        },
      ],
    });
  });

  it.each([
    ["success", "#1f883d"],
    ["timeout", "#cf222e"],
    ["rate_limited", "#d4a72c"],
  ])("colours a %s notice %s", (status, colour) => {
    expect(mattermostMessage(notice({ status }), {}).attachments[0].color).toBe(colour);
  });

  it("shows object output as JSON in a code block, text output as written", () => {
    expect(mattermostMessage(NOTICES.success, {}).attachments[0].text).toBe(
      '```\n{"answer":"Reset the router","confidence":0.93}\n```',
    );
    expect(mattermostMessage(notice({ output: "**done**" }), {}).attachments[0].text).toBe("**done**");
  });

  it("passes channel, username and icon overrides through", () => {
    const config = { ...CONFIGS.mattermost, username: "steward", icon_url: "https://cdn.example.com/s.png" };
    expect(parsedBody(mattermostAdapter.create(config, CONTEXT).format(NOTICES.success))).toMatchObject({
      channel: "town-square",
      username: "steward",
      icon_url: "https://cdn.example.com/s.png",
    });
  });

  it("keeps a huge output and error within its limits, cut with an ellipsis", () => {
    const [attachment] = mattermostMessage(
      notice({ output: "z".repeat(100_000), error: "e".repeat(5000) }),
      {},
    ).attachments;
    expect(attachment.text.length).toBe(MATTERMOST_LIMITS.text);
    expect(attachment.text.endsWith("z…")).toBe(true);
    expect(attachment.fields.find((field) => field.title === "Error")?.value.length).toBe(
      MATTERMOST_LIMITS.fieldValue,
    );
  });

  it("treats the webhook URL as a secret and checks icon_url as a URL", () => {
    expect(mattermostAdapter.configSpec.secretPaths).toEqual(["webhook_url"]);
    expect(
      validateConfig(
        mattermostAdapter.configSpec,
        { ...CONFIGS.mattermost, icon_url: "ftp://x/y.png" },
        "platform_config",
      ),
    ).toEqual([{ field: "platform_config.icon_url", message: "must use the http or https scheme" }]);
  });
});

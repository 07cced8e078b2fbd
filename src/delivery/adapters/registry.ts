import type { AdapterRegistry } from "./adapter.js";
import { customHttpAdapter } from "./custom-http.adapter.js";
import { discordAdapter } from "./discord.adapter.js";
import { mattermostAdapter } from "./mattermost.adapter.js";
import { notionAdapter } from "./notion.adapter.js";
import { slackAdapter } from "./slack.adapter.js";
import { teamsAdapter } from "./teams.adapter.js";
import { telegramAdapter } from "./telegram.adapter.js";

/** Every platform's adapter. Typed as AdapterRegistry, so a platform without one does not compile. */
export const ADAPTERS: AdapterRegistry = {
  teams: teamsAdapter,
  discord: discordAdapter,
  slack: slackAdapter,
  telegram: telegramAdapter,
  notion: notionAdapter,
  custom_http: customHttpAdapter,
  mattermost: mattermostAdapter,
  a2a: customHttpAdapter,
};

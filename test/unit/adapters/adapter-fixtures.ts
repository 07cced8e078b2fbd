import type { Platform } from "../../../src/agents/agent-kinds.js";
import type {
  AdapterContext,
  DeliveryPayload,
  HttpAnswer,
  HttpSender,
  InvocationNotice,
} from "../../../src/delivery/adapters/adapter.js";
import { ADAPTERS } from "../../../src/delivery/adapters/registry.js";

/**
 * Shared by the adapter tests: one config per platform whose every credential contains
 * "canary" (and nothing else does, so an error mentioning it leaked one), notices of
 * every kind, and a recording HttpSender standing in for the network.
 */

export const NOW = new Date("2026-03-01T12:00:00.000Z");

export const SIGNING_SECRET = "canary-signing-secret-0123456789";

export const CONFIGS: Record<Platform, Record<string, unknown>> = {
  teams: {
    tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47",
    channel_id: "19:abc@thread.tacv2",
    webhook_url:
      "https://prod-01.westus.logic.azure.com/workflows/canaryteamsworkflow0001/triggers/manual/paths/invoke?api-version=2016-06-01&sig=canaryTeamsSig0123456789abcdefABCDEF",
  },
  discord: {
    webhook_url:
      "https://discord.com/api/webhooks/123456789012345678/canaryDiscordToken0123456789abcdefghijklmnop",
    username: "Steward",
  },
  slack: {
    webhook_url: "https://hooks.slack.com/services/T0000/B0000/canarySlackToken012345",
    channel: "#agents",
  },
  telegram: { bot_token: "123456789:canaryTelegramToken0123456789abcdefgh", chat_id: -1001234567890 },
  notion: {
    token: "secret_canaryNotionToken0123456789abcdefghij",
    database_id: "a8aec43384f447ed84390e8e42c2e089",
  },
  custom_http: {
    webhook_url: "https://results.example.com/hooks/canaryCustomPath0123456789",
    headers: { Authorization: "Bearer canaryCustomHeader0123456789", "X-Source": "steward" },
  },
  mattermost: {
    webhook_url: "https://chat.example.com/hooks/canarymattermosthook0123456",
    channel: "town-square",
  },
  a2a: {
    webhook_url: "https://results.example.com/hooks/canaryA2aPath0123456789",
    headers: { Authorization: "Bearer canaryA2aHeader0123456789" },
  },
};

export const CONTEXT: AdapterContext = {
  publicUrl: "https://steward.example.com",
  telegramApiUrl: "https://telegram.test",
  notionApiUrl: "https://notion.test/",
  now: () => NOW,
};

/** Where each platform's request must go. */
export const DESTINATIONS: Record<Platform, string> = {
  teams: CONFIGS.teams.webhook_url as string,
  // Asked to confirm that the message was saved (see discord.adapter.ts).
  discord: `${CONFIGS.discord.webhook_url as string}?wait=true`,
  slack: CONFIGS.slack.webhook_url as string,
  telegram: `https://telegram.test/bot${CONFIGS.telegram.bot_token as string}/sendMessage`,
  notion: "https://notion.test/v1/pages",
  custom_http: CONFIGS.custom_http.webhook_url as string,
  mattermost: CONFIGS.mattermost.webhook_url as string,
  a2a: CONFIGS.a2a.webhook_url as string,
};

/** The body each platform confirms a delivery with. */
export const CONFIRMATIONS: Record<Platform, string> = {
  teams: "",
  // With wait=true, the message as saved.
  discord: JSON.stringify({ id: "1234567890", type: 0, channel_id: "987654321" }),
  slack: "ok",
  telegram: JSON.stringify({ ok: true, result: { message_id: 1 } }),
  notion: JSON.stringify({ object: "page", id: "59833787-2cf9-4fdf-8782-e53db20768a5" }),
  custom_http: "",
  mattermost: "ok",
  a2a: "",
};

export function notice(overrides: Partial<InvocationNotice> = {}): InvocationNotice {
  return {
    invocationId: "inv_01jc7s3bz8m0v4kx2g6wq9hfre",
    agentId: "agt_01jc7rzx4b1n5c8d2e6f0g9h3j",
    agentName: "support-bot",
    status: "success",
    output: { answer: "Reset the router", confidence: 0.93 },
    error: null,
    durationMs: 1234,
    costUsd: 0.0125,
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    externalUser: "ada@example.com",
    createdAt: new Date("2026-03-01T11:59:58.766Z"),
    completedAt: new Date("2026-03-01T12:00:00.000Z"),
    dashboardUrl: "https://steward.example.com/lineage/inv_01jc7s3bz8m0v4kx2g6wq9hfre",
    ...overrides,
  };
}

/** One notice per kind of ending: success, failures, and each refusal by governance. */
export const NOTICES = {
  success: notice(),
  "success with text output": notice({ output: "All *done* — see <https://example.com|here> & @everyone" }),
  "success without output": notice({ output: null }),
  failure: notice({ status: "failure", output: null, error: "agent answered HTTP 502" }),
  timeout: notice({ status: "timeout", output: null, error: "no complete answer before the deadline" }),
  policy_denied: notice({
    status: "policy_denied",
    output: null,
    error: "denied by policy pol_1",
    durationMs: null,
  }),
  rate_limited: notice({ status: "rate_limited", output: null, error: "rate limit exceeded", costUsd: null }),
  budget_exceeded: notice({ status: "budget_exceeded", output: null, error: "monthly budget exceeded" }),
} satisfies Record<string, InvocationNotice>;

export interface SentRequest {
  payload: DeliveryPayload;
  timeoutMs: number;
}

/**
 * A real HttpSender without a network: answers each request with `answer(payload)`
 * and records what was sent.
 */
export function fakeSender(
  answer: (payload: DeliveryPayload) => Partial<HttpAnswer> & { statusCode: number },
): {
  send: HttpSender;
  sent: SentRequest[];
} {
  const sent: SentRequest[] = [];
  const send: HttpSender = async (payload, timeoutMs) => {
    sent.push({ payload, timeoutMs });
    return { headers: {}, body: "", ...answer(payload) };
  };
  return { send, sent };
}

export function adapterFor(platform: Platform, overrides: Partial<AdapterContext> = {}) {
  return ADAPTERS[platform].create(CONFIGS[platform], { ...CONTEXT, ...overrides });
}

export function parsedBody(payload: DeliveryPayload): Record<string, unknown> {
  return JSON.parse(payload.body) as Record<string, unknown>;
}

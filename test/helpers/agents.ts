/** Valid registration bodies, one per platform, with recognisable secret values. */

export const SECRETS = {
  clientSecret: "oauth-client-secret-CANARY-1111",
  slackWebhook: "https://hooks.slack.com/services/T000/B000/CANARYslack2222",
  botToken: "123456:telegram-bot-token-CANARY-3333",
};

export function slackAgent(overrides: Record<string, unknown> = {}) {
  return {
    name: "support-bot",
    description: "Answers support tickets",
    platform: "slack",
    webhook_url: "https://agent.example.com/invoke",
    auth_type: "oauth2",
    auth_config: {
      client_id: "steward-client",
      client_secret: SECRETS.clientSecret,
      token_url: "https://login.example.com/oauth/token",
    },
    platform_config: { webhook_url: SECRETS.slackWebhook, channel: "#support" },
    rate_limit_config: { requests_per_minute: 60 },
    budget_config: { max_monthly_cost: 100, cost_per_execution: 0.01 },
    capabilities: ["summarize"],
    tags: ["support", "tier1"],
    ...overrides,
  };
}

export function telegramAgent(overrides: Record<string, unknown> = {}) {
  return {
    name: "alerts",
    platform: "telegram",
    webhook_url: "https://alerts.example.com/hook",
    auth_type: "bearer_token",
    auth_config: { token: "bearer-token-value-4444" },
    platform_config: { bot_token: SECRETS.botToken, chat_id: -1001234567 },
    tags: ["ops"],
    ...overrides,
  };
}

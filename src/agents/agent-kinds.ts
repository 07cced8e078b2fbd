/** The closed sets an external agent is described with. */

export const PLATFORMS = [
  "teams",
  "discord",
  "slack",
  "telegram",
  "notion",
  "custom_http",
  "mattermost",
  // An Agent2Agent agent: called over A2A; its results go nowhere unless platform_config
  // names an endpoint, as custom_http's does.
  "a2a",
] as const;
export type Platform = (typeof PLATFORMS)[number];

export const AUTH_TYPES = ["oauth2", "api_key", "bearer_token", "basic", "hmac", "custom", "none"] as const;
export type AuthType = (typeof AUTH_TYPES)[number];

export const AGENT_STATUSES = ["active", "inactive", "deleted"] as const;
export type AgentStatus = (typeof AGENT_STATUSES)[number];

import { createHash } from "node:crypto";
import type { RateLimitConfig } from "../../agents/governance-config.js";
import type { LimitSpec, WindowName } from "./rate-limiter.js";

const WINDOW_FIELDS: Array<[WindowName, "requests_per_minute" | "requests_per_hour" | "requests_per_day"]> = [
  ["minute", "requests_per_minute"],
  ["hour", "requests_per_hour"],
  ["day", "requests_per_day"],
];

/**
 * The limits one call is counted against: the agent's windows (falling back window by
 * window to the organization's defaults), and per external user the `per_user` windows.
 * User ids are hashed into the key, so counters never hold an email address.
 */
export function limitSpecsFor(
  agentId: string,
  agentConfig: RateLimitConfig,
  organizationDefaults: RateLimitConfig,
  externalUser: string | undefined,
): LimitSpec[] {
  const specs: LimitSpec[] = [];
  for (const [window, field] of WINDOW_FIELDS) {
    const limit = agentConfig[field] ?? organizationDefaults[field];
    if (limit !== undefined) specs.push({ key: `agent:${agentId}`, window, limit });
  }
  if (externalUser !== undefined) {
    const userKey = `user:${agentId}:${createHash("sha256").update(externalUser).digest("hex").slice(0, 32)}`;
    for (const [window, field] of WINDOW_FIELDS) {
      const limit = agentConfig.per_user?.[field] ?? organizationDefaults.per_user?.[field];
      if (limit !== undefined) specs.push({ key: userKey, window, limit });
    }
  }
  return specs;
}

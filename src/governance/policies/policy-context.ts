/**
 * What organization policies are evaluated against, and what they decide. The invoke
 * pipeline fills a PolicyContext per call; the policy engine answers a PolicyDecision.
 */

export interface PolicyContext {
  environment: string; // request context.environment, else the server's STEWARD_ENV
  ip?: string; // caller IP
  roles: string[]; // the Steward principal's roles plus the external user's role, if any
  team: string | null;
  externalSystem?: string;
  externalUserId?: string;
  externalUserEmail?: string;
  now: Date;
  /** For custom conditions and Cedar context: {context, metadata, external_context, principal, agent, ...}. Dotted paths into this object, e.g. "context.department". */
  attributes: Record<string, unknown>;
  principal: { type: string; id: string; organizationId: string };
  agent: { id: string; name: string; platform: string; tags: string[] };
}

export type CombiningStrategy = "deny_overrides" | "allow_overrides" | "first_match";

export interface PolicyDecision {
  allowed: boolean;
  reason: string;
  /** Policies whose conditions held, in evaluation order. */
  matchedPolicies: Array<{ id: string; name: string; effect: "allow" | "deny" }>;
  /** The policies that decided (for lineage), empty when no policy exists. */
  decidingPolicyIds: string[];
}

/**
 * Roles, permissions and the default mapping between them. Decisions are computed
 * here, in memory: the role table is static, so no policy engine is needed on the
 * hot path (Cedar evaluates the organization's custom policies at invocation).
 */

export const PERMISSIONS = [
  "external_agents:create",
  "external_agents:read",
  "external_agents:update",
  "external_agents:delete",
  "external_agents:invoke",
  "lineage:read",
  "lineage:export",
  "gdpr:redact",
  "approvals:read",
  "approvals:approve",
  "policies:manage",
  "api_keys:manage",
  "agents:manage",
  "agents:read",
  "agents:update",
  "jobs:submit",
  "jobs:read",
] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** Held only by platform admins, across every organization. */
export const PLATFORM_PERMISSIONS = ["organizations:manage"] as const;
export type PlatformPermission = (typeof PLATFORM_PERMISSIONS)[number];

export type AnyPermission = Permission | PlatformPermission;

export const ROLES = ["owner", "admin", "developer", "viewer", "auditor"] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: unknown): value is Role {
  return typeof value === "string" && (ROLES as readonly string[]).includes(value);
}

const READ_PERMISSIONS: Permission[] = [
  "external_agents:read",
  "agents:read",
  "jobs:read",
  "approvals:read",
  "lineage:read",
];

export const ROLE_PERMISSIONS: Record<Role, ReadonlySet<Permission>> = {
  owner: new Set(PERMISSIONS),
  admin: new Set(PERMISSIONS),
  developer: new Set([
    "external_agents:create",
    "external_agents:read",
    "external_agents:update",
    "external_agents:invoke",
    "lineage:read",
    "agents:read",
    "approvals:read",
    "jobs:submit",
    "jobs:read",
  ]),
  viewer: new Set(["external_agents:read", "agents:read", "jobs:read"]),
  auditor: new Set([...READ_PERMISSIONS, "lineage:export"]),
};

/**
 * What a managed agent's own token allows: reading and updating itself (config,
 * status, heartbeats, metrics, logs). Routes keep it to its own id.
 */
export const AGENT_PERMISSIONS: ReadonlySet<Permission> = new Set(["agents:read", "agents:update"]);

/** Who is calling, as established by authentication. */
export interface Principal {
  type: "api_key" | "jwt" | "agent" | "job";
  /** API key id, the JWT subject, or the managed agent's id. */
  id: string;
  /** Set for a managed agent's token: the only agent this caller may see. */
  agentId?: string;
  organizationId: string;
  roles: Role[];
  team: string | null;
  platformAdmin: boolean;
  /** API key prefix (`sk_live_abcd`), for lineage and audit; never the key. */
  keyPrefix?: string;
}

export interface Decision {
  allowed: boolean;
  reason: string;
}

/**
 * May `principal` exercise `permission` on a resource of `resourceOrganizationId`
 * (the principal's own organization when omitted)? Fails closed on any error.
 */
export function authorize(
  principal: Principal,
  permission: AnyPermission,
  resourceOrganizationId: string = principal.organizationId,
): Decision {
  try {
    if ((PLATFORM_PERMISSIONS as readonly string[]).includes(permission)) {
      return principal.platformAdmin
        ? { allowed: true, reason: "platform admin" }
        : { allowed: false, reason: `${permission} requires a platform admin` };
    }
    if (resourceOrganizationId !== principal.organizationId && !principal.platformAdmin) {
      return { allowed: false, reason: "resource belongs to another organization" };
    }
    if (principal.agentId !== undefined) {
      return AGENT_PERMISSIONS.has(permission as Permission)
        ? { allowed: true, reason: "managed agent acting on itself" }
        : { allowed: false, reason: `a managed agent may not ${permission}` };
    }
    const granted = principal.roles.some((role) => ROLE_PERMISSIONS[role]?.has(permission as Permission));
    return granted
      ? { allowed: true, reason: "granted by role" }
      : { allowed: false, reason: `missing permission ${permission}` };
  } catch {
    return { allowed: false, reason: "authorization could not be evaluated" };
  }
}

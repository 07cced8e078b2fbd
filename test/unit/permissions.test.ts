import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type AnyPermission,
  authorize,
  isRole,
  PERMISSIONS,
  type Permission,
  type Principal,
  ROLES,
  type Role,
} from "../../src/auth/permissions.js";

const ORG = "org_01home";
const OTHER_ORG = "org_01other";

function principal(roles: Role[], overrides: Partial<Principal> = {}): Principal {
  return {
    type: "api_key",
    id: "key_01",
    organizationId: ORG,
    roles,
    team: null,
    platformAdmin: false,
    ...overrides,
  };
}

/** The role matrix integrators rely on: what each role may do inside its own organization. */
const GRANTED: Record<Role, readonly Permission[]> = {
  owner: PERMISSIONS,
  admin: PERMISSIONS,
  developer: [
    "external_agents:create",
    "external_agents:read",
    "external_agents:update",
    "external_agents:invoke",
    "lineage:read",
    "agents:read",
    "approvals:read",
    "jobs:submit",
    "jobs:read",
  ],
  viewer: ["external_agents:read", "agents:read", "jobs:read"],
  auditor: [
    "external_agents:read",
    "agents:read",
    "jobs:read",
    "approvals:read",
    "lineage:read",
    "lineage:export",
  ],
};

const matrix = ROLES.flatMap((role) =>
  PERMISSIONS.map((permission) => [role, permission, GRANTED[role].includes(permission)] as const),
);

describe("authorize", () => {
  it.each(matrix)("%s → %s: allowed=%s", (role, permission, allowed) => {
    expect(authorize(principal([role]), permission).allowed).toBe(allowed);
  });

  it.each([
    "external_agents:delete",
    "api_keys:manage",
    "policies:manage",
    "approvals:approve",
    "gdpr:redact",
  ] as const)("a developer may not %s", (permission) => {
    const decision = authorize(principal(["developer"]), permission);
    expect(decision).toEqual({ allowed: false, reason: `missing permission ${permission}` });
  });

  it.each([
    "external_agents:create",
    "external_agents:update",
    "external_agents:invoke",
    "lineage:export",
  ] as const)("a viewer may not %s", (permission) => {
    expect(authorize(principal(["viewer"]), permission).allowed).toBe(false);
  });

  it("grants the union of a principal's roles", () => {
    const both = principal(["viewer", "auditor"]);
    expect(authorize(both, "lineage:export").allowed).toBe(true);
    expect(authorize(both, "external_agents:create").allowed).toBe(false);
    expect(authorize(principal(["auditor", "developer"]), "external_agents:invoke").allowed).toBe(true);
  });

  it("denies everything to a principal with no roles", () => {
    for (const permission of PERMISSIONS) expect(authorize(principal([]), permission).allowed).toBe(false);
  });

  it("treats an explicit own-organization resource like an omitted one", () => {
    expect(authorize(principal(["viewer"]), "external_agents:read", ORG)).toEqual({
      allowed: true,
      reason: "granted by role",
    });
  });

  describe("other organizations", () => {
    it.each(ROLES)("denies a %s every permission on another organization's resources", (role) => {
      for (const permission of PERMISSIONS) {
        expect(authorize(principal([role]), permission, OTHER_ORG)).toEqual({
          allowed: false,
          reason: "resource belongs to another organization",
        });
      }
    });

    it("lets a platform admin act on another organization's resources, within their role", () => {
      const admin = principal(["admin"], { platformAdmin: true });
      expect(authorize(admin, "external_agents:delete", OTHER_ORG).allowed).toBe(true);
      const platformViewer = principal(["viewer"], { platformAdmin: true });
      expect(authorize(platformViewer, "external_agents:read", OTHER_ORG).allowed).toBe(true);
      expect(authorize(platformViewer, "external_agents:delete", OTHER_ORG).allowed).toBe(false);
    });

    it("denies any non-platform-admin any permission on any other organization", () => {
      fc.assert(
        fc.property(
          fc.subarray([...ROLES]),
          fc.constantFrom(...PERMISSIONS),
          fc.string().filter((org) => org !== ORG),
          (roles, permission, org) => {
            expect(authorize(principal(roles), permission, org).allowed).toBe(false);
          },
        ),
      );
    });
  });

  describe("organizations:manage", () => {
    it.each(ROLES)("is denied to a %s who is not a platform admin", (role) => {
      expect(authorize(principal([role]), "organizations:manage")).toEqual({
        allowed: false,
        reason: "organizations:manage requires a platform admin",
      });
    });

    it("is granted to a platform admin, whatever their roles and organization", () => {
      expect(authorize(principal([], { platformAdmin: true }), "organizations:manage").allowed).toBe(true);
      expect(
        authorize(principal(["viewer"], { platformAdmin: true }), "organizations:manage", OTHER_ORG).allowed,
      ).toBe(true);
    });
  });

  describe("fails closed", () => {
    it.each(["superuser", "__proto__", "constructor", "toString", ""])(
      "grants nothing for the unknown role %j",
      (role) => {
        for (const permission of PERMISSIONS) {
          expect(authorize(principal([role as Role]), permission).allowed).toBe(false);
        }
      },
    );

    it("denies a permission that does not exist", () => {
      expect(authorize(principal(["owner"]), "everything:*" as AnyPermission).allowed).toBe(false);
    });

    it("denies when the principal is malformed", () => {
      const broken = { ...principal(["owner"]), roles: null } as unknown as Principal;
      expect(authorize(broken, "external_agents:read")).toEqual({
        allowed: false,
        reason: "authorization could not be evaluated",
      });
    });
  });
});

describe("isRole", () => {
  it.each(ROLES)("recognises %s", (role) => {
    expect(isRole(role)).toBe(true);
  });

  it.each(["Owner", "superadmin", "", null, undefined, 1, ["admin"], "__proto__"])("rejects %j", (value) => {
    expect(isRole(value)).toBe(false);
  });
});

import { createRemoteJWKSet, type JWTPayload, jwtVerify } from "jose";
import type { JwtConfig } from "../config.js";
import { isRole, type Principal, type Role } from "./permissions.js";

const SECRET_ALGORITHMS = ["HS256", "HS384", "HS512"];
const KEY_SET_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
];

/** Finds an organization id from the value of the organization claim (an id or a name). */
export type ResolveOrganization = (claim: string) => Promise<string | undefined>;

function rolesFrom(claim: unknown): Role[] {
  const values = Array.isArray(claim) ? claim : typeof claim === "string" ? claim.split(/[\s,]+/) : [];
  return values.filter(isRole);
}

/** A JWT that looks like one: three base64url segments. */
export function looksLikeJwt(token: string): boolean {
  return /^[\w-]+\.[\w-]+\.[\w-]*$/.test(token);
}

/**
 * Verifies bearer JWTs (signature, expiry, issuer, audience) and maps their claims to
 * a principal. Tokens whose organization Steward does not know are refused.
 */
export function createJwtAuthenticator(config: JwtConfig, resolveOrganization: ResolveOrganization) {
  const secret = config.secret ? new TextEncoder().encode(config.secret) : undefined;
  const getKey = secret ? async () => secret : createRemoteJWKSet(new URL(config.jwksUrl as string));
  const algorithms = config.secret ? SECRET_ALGORITHMS : KEY_SET_ALGORITHMS;

  return async (token: string): Promise<Principal | null> => {
    let payload: JWTPayload;
    try {
      const verified = await jwtVerify(token, getKey, {
        issuer: config.issuer,
        audience: config.audience,
        algorithms,
      });
      payload = verified.payload;
    } catch {
      return null;
    }
    const orgClaim = payload[config.orgClaim];
    if (typeof payload.sub !== "string" || typeof orgClaim !== "string") return null;
    const organizationId = await resolveOrganization(orgClaim);
    if (!organizationId) return null;
    const team = payload[config.teamClaim];
    return {
      type: "jwt",
      id: payload.sub,
      organizationId,
      roles: rolesFrom(payload[config.rolesClaim]),
      team: typeof team === "string" ? team : null,
      platformAdmin: false,
    };
  };
}

import { decodeProtectedHeader, jwtVerify, SignJWT } from "jose";
import type { SecretBox } from "../crypto/secret-box.js";

/** Issuer and audience of the tokens Steward gives its managed agents, so no other JWT passes for one. */
const ISSUER = "steward";
const AUDIENCE = "steward-managed-agent";
const PURPOSE = "managed-agent-tokens";

export interface AgentTokenSubject {
  id: string;
  organizationId: string;
  /** The agent's current token generation; bumping it revokes every token issued before. */
  tokenGeneration: number;
}

export interface AgentTokenClaims {
  agentId: string;
  organizationId: string;
  generation: number;
}

/**
 * Short-lived HS256 JWTs for managed agents, signed with a key derived from the
 * encryption key. The key id travels in the header, so tokens signed before a key
 * rotation stay verifiable while the old key is among the previous keys.
 */
export class AgentTokens {
  /** Derived once per key id: every authenticated JWT request passes through verify(). */
  private readonly keys = new Map<string, Uint8Array>();

  constructor(
    private readonly secretBox: SecretBox,
    private readonly ttlS: number,
  ) {}

  private signingKey(keyId: string = this.secretBox.currentKeyId): Uint8Array {
    let key = this.keys.get(keyId);
    if (!key) {
      key = this.secretBox.derivedKey(PURPOSE, keyId);
      this.keys.set(keyId, key);
    }
    return key;
  }

  async issue(agent: AgentTokenSubject, now = new Date()): Promise<{ token: string; expiresAt: Date }> {
    const issuedAt = Math.floor(now.getTime() / 1000);
    const expiresAt = new Date((issuedAt + this.ttlS) * 1000);
    const token = await new SignJWT({ org: agent.organizationId, gen: agent.tokenGeneration })
      .setProtectedHeader({ alg: "HS256", kid: this.secretBox.currentKeyId })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(agent.id)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .sign(this.signingKey());
    return { token, expiresAt };
  }

  /** The claims of a valid agent token, or null for anything else (another issuer's JWT included). */
  async verify(token: string): Promise<AgentTokenClaims | null> {
    try {
      const { kid } = decodeProtectedHeader(token);
      if (typeof kid !== "string") return null;
      const { payload } = await jwtVerify(token, this.signingKey(kid), {
        issuer: ISSUER,
        audience: AUDIENCE,
        algorithms: ["HS256"],
      });
      if (
        typeof payload.sub !== "string" ||
        typeof payload.org !== "string" ||
        typeof payload.gen !== "number"
      )
        return null;
      return { agentId: payload.sub, organizationId: payload.org, generation: payload.gen };
    } catch {
      return null;
    }
  }
}

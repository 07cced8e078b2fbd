import type { Authenticate } from "./access-control.js";
import type { ApiKeyService } from "./api-key.service.js";
import { looksLikeJwt } from "./jwt.js";
import type { Principal } from "./permissions.js";

type VerifyToken = (token: string) => Promise<Principal | null>;

/**
 * One entry point for every kind of credential: a JWT is a managed agent's own token
 * or, when configured, one from the identity provider; anything else is an API key.
 */
export function createAuthenticator(
  apiKeys: ApiKeyService,
  verifyAgentToken: VerifyToken,
  verifyJwt?: VerifyToken,
): Authenticate {
  return async (credential) => {
    if (!looksLikeJwt(credential)) return apiKeys.authenticate(credential);
    const agent = await verifyAgentToken(credential);
    if (agent) return agent;
    return verifyJwt ? verifyJwt(credential) : null;
  };
}

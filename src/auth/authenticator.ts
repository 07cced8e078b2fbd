import type { Authenticate } from "./access-control.js";
import type { ApiKeyService } from "./api-key.service.js";
import { looksLikeJwt } from "./jwt.js";
import type { Principal } from "./permissions.js";

/** One entry point for every kind of credential: JWTs when configured, API keys otherwise. */
export function createAuthenticator(
  apiKeys: ApiKeyService,
  verifyJwt?: (token: string) => Promise<Principal | null>,
): Authenticate {
  return async (credential) => {
    if (verifyJwt && looksLikeJwt(credential)) return verifyJwt(credential);
    return apiKeys.authenticate(credential);
  };
}

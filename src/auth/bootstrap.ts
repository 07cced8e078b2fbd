import type { Logger } from "pino";
import type { ApiKeyService } from "./api-key.service.js";
import { SYSTEM_ACTOR } from "./api-key.service.js";

/**
 * Makes sure someone can sign in. The bootstrap key from the environment is ensured
 * (never duplicated); without one, a first start with no key at all creates an admin
 * key and returns it so the caller can show it once.
 */
export async function ensureAdminAccess(
  apiKeys: ApiKeyService,
  bootstrapKey: string | undefined,
  organizationId: string,
  logger: Logger,
): Promise<{ firstAdminKey?: string }> {
  if (bootstrapKey) {
    const outcome = await apiKeys.ensureBootstrapKey(bootstrapKey, organizationId);
    logger.info({ organization_id: organizationId, outcome }, "bootstrap admin key ensured");
    return {};
  }
  if ((await apiKeys.countAll()) > 0) return {};
  const { key } = await apiKeys.create(
    { organizationId, name: "first admin", role: "admin", platformAdmin: true },
    { actor: SYSTEM_ACTOR },
  );
  return { firstAdminKey: key };
}

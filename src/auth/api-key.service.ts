import { and, count, desc, eq, isNull, sql } from "drizzle-orm";
import { type Actor, type RequestContext, recordAudit } from "../audit/audit.js";
import { TtlCache } from "../cache/ttl-cache.js";
import type { Db } from "../db/database.js";
import { selectRows } from "../db/paginate.js";
import { type ApiKeyRow, apiKeys } from "../db/schema.js";
import { AppError, NotFoundError } from "../errors.js";
import type { PageRequest } from "../http/pagination.js";
import { newId } from "../ids.js";
import { displayPrefix, generateApiKey, hashApiKey } from "./api-key-secret.js";
import type { Principal, Role } from "./permissions.js";

export interface CreateApiKeyInput {
  organizationId: string;
  name: string;
  role: Role;
  team?: string | null;
  expiresAt?: Date | null;
  platformAdmin?: boolean;
}

export interface CreatedApiKey {
  row: ApiKeyRow;
  /** The key itself: returned once, never stored. */
  key: string;
}

export const SYSTEM_ACTOR: Actor = { type: "system", id: "steward" };

/**
 * How long a verified key is trusted without asking the database again. A revocation
 * made through this process applies at once; other replicas honour it within this time.
 */
const VERIFIED_KEY_TTL_MS = 2_000;

export class ApiKeyService {
  /** Run on every request: prepared once, so the query is not rebuilt each time. */
  private readonly findActiveByHash;
  /** Active keys by hash, so a busy client's requests do not each read the database. */
  private readonly activeKeys = new TtlCache<ApiKeyRow | undefined>(VERIFIED_KEY_TTL_MS);

  constructor(private readonly db: Db) {
    this.findActiveByHash = db
      .select()
      .from(apiKeys)
      .where(and(eq(apiKeys.keyHash, sql.placeholder("keyHash")), isNull(apiKeys.revokedAt)))
      .prepare("steward_api_key_by_hash");
  }

  async create(
    input: CreateApiKeyInput,
    context: RequestContext,
    key = generateApiKey(),
  ): Promise<CreatedApiKey> {
    if (input.expiresAt && input.expiresAt.getTime() <= Date.now()) {
      throw new AppError("VALIDATION_ERROR", "expires_at must be in the future", {
        errors: [{ field: "expires_at", message: "must be in the future" }],
      });
    }
    return this.db.transaction(async (tx) => {
      const [row] = await tx
        .insert(apiKeys)
        .values({
          id: newId("apiKey"),
          organizationId: input.organizationId,
          name: input.name,
          role: input.role,
          team: input.team ?? null,
          platformAdmin: input.platformAdmin ?? false,
          prefix: displayPrefix(key),
          keyHash: hashApiKey(key),
          createdBy: context.actor.id,
          expiresAt: input.expiresAt ?? null,
        })
        .returning();
      if (!row) throw new Error("insert returned no row");
      await recordAudit(tx, context, {
        organizationId: row.organizationId,
        action: "api_key.created",
        resourceType: "api_key",
        resourceId: row.id,
        details: { name: row.name, role: row.role, prefix: row.prefix, platform_admin: row.platformAdmin },
      });
      return { row, key };
    });
  }

  /**
   * Makes sure a platform-admin key with exactly this secret exists for `organizationId`
   * and is usable. Safe to call at every start: the key is matched by its hash.
   */
  async ensureBootstrapKey(key: string, organizationId: string): Promise<"created" | "existing"> {
    const keyHash = hashApiKey(key);
    const [existing] = await this.db.select().from(apiKeys).where(eq(apiKeys.keyHash, keyHash));
    if (existing) {
      if (existing.revokedAt || existing.expiresAt || !existing.platformAdmin) {
        // The environment declares this key usable: undo a revocation or expiry, on the record.
        await this.db.transaction(async (tx) => {
          await tx
            .update(apiKeys)
            .set({ revokedAt: null, expiresAt: null, platformAdmin: true })
            .where(eq(apiKeys.id, existing.id));
          await recordAudit(
            tx,
            { actor: SYSTEM_ACTOR },
            {
              organizationId: existing.organizationId,
              action: "api_key.restored",
              resourceType: "api_key",
              resourceId: existing.id,
              details: { prefix: existing.prefix, reason: "STEWARD_BOOTSTRAP_ADMIN_KEY" },
            },
          );
        });
      }
      return "existing";
    }
    await this.create(
      { organizationId, name: "bootstrap admin", role: "admin", platformAdmin: true },
      { actor: SYSTEM_ACTOR },
      key,
    );
    return "created";
  }

  async countAll(): Promise<number> {
    const [row] = await this.db.select({ total: count() }).from(apiKeys);
    return row?.total ?? 0;
  }

  /** The principal a presented key stands for, or null if it is unknown, revoked or expired. */
  async authenticate(key: string, now = new Date()): Promise<Principal | null> {
    const keyHash = hashApiKey(key);
    const row = await this.activeKeys.get(keyHash, async () => {
      const [found] = await this.findActiveByHash.execute({ keyHash });
      return found;
    });
    // Unknown keys are not remembered: guessing would only fill the cache.
    if (!row) this.activeKeys.invalidate(keyHash);
    if (!row || (row.expiresAt && row.expiresAt <= now)) return null;
    return {
      type: "api_key",
      id: row.id,
      organizationId: row.organizationId,
      roles: [row.role as Role],
      team: row.team,
      platformAdmin: row.platformAdmin,
      keyPrefix: row.prefix,
    };
  }

  async list(organizationId: string, page: PageRequest): Promise<{ rows: ApiKeyRow[]; total: number }> {
    const where = eq(apiKeys.organizationId, organizationId);
    return selectRows(this.db, apiKeys, where, [desc(apiKeys.id)], page);
  }

  /** Revokes a key of `organizationId`; revoking twice is not an error. */
  async revoke(organizationId: string, id: string, context: RequestContext): Promise<void> {
    await this.db.transaction(async (tx) => {
      const [row] = await tx
        .select()
        .from(apiKeys)
        .where(and(eq(apiKeys.id, id), eq(apiKeys.organizationId, organizationId)));
      if (!row) throw new NotFoundError("API key", id);
      if (row.revokedAt) return;
      await tx.update(apiKeys).set({ revokedAt: new Date() }).where(eq(apiKeys.id, id));
      await recordAudit(tx, context, {
        organizationId,
        action: "api_key.revoked",
        resourceType: "api_key",
        resourceId: id,
        details: { prefix: row.prefix },
      });
    });
    this.activeKeys.clear();
  }
}

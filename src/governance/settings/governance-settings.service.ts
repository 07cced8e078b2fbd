import { eq } from "drizzle-orm";
import {
  BUDGET_DEFAULTS,
  type BudgetConfig,
  normalizeBudgetConfig,
  type RateLimitConfig,
} from "../../agents/governance-config.js";
import { type RequestContext, recordAudit } from "../../audit/audit.js";
import { TtlCache } from "../../cache/ttl-cache.js";
import type { Db } from "../../db/database.js";
import { organizations } from "../../db/schema.js";
import { NotFoundError, ValidationError } from "../../errors.js";
import type { CombiningStrategy } from "../policies/policy-context.js";

/** An organization's governance defaults, applied to every agent it owns. */
export interface GovernanceSettings {
  policy_combining: CombiningStrategy;
  rate_limit_defaults: RateLimitConfig;
  budget_config: BudgetConfig;
}

export type GovernanceSettingsPatch = Partial<GovernanceSettings>;

const CACHE_TTL_MS = 2_000;

export class GovernanceSettingsService {
  private readonly cache = new TtlCache<GovernanceSettings>(CACHE_TTL_MS);

  constructor(private readonly db: Db) {}

  /** Read on every invocation, so cached briefly. */
  get(organizationId: string): Promise<GovernanceSettings> {
    return this.cache.get(organizationId, () => this.load(organizationId));
  }

  async update(
    organizationId: string,
    patch: GovernanceSettingsPatch,
    context: RequestContext,
  ): Promise<GovernanceSettings> {
    const changes: Partial<typeof organizations.$inferInsert> = {};
    if (patch.policy_combining !== undefined) changes.policyCombining = patch.policy_combining;
    if (patch.rate_limit_defaults !== undefined) changes.rateLimitDefaults = patch.rate_limit_defaults;
    if (patch.budget_config !== undefined) {
      const budget = normalizeBudgetConfig(patch.budget_config);
      if (budget.errors.length > 0) throw new ValidationError(budget.errors);
      changes.budgetConfig = budget.config;
    }
    // Nothing to change: the settings as they are, with nothing written or audited.
    if (Object.keys(changes).length === 0) return this.load(organizationId);
    await this.db.transaction(async (tx) => {
      const updated = await tx
        .update(organizations)
        .set(changes)
        .where(eq(organizations.id, organizationId))
        .returning({ id: organizations.id });
      if (updated.length === 0) throw new NotFoundError("organization", organizationId);
      await recordAudit(tx, context, {
        organizationId,
        action: "governance_settings.updated",
        resourceType: "organization",
        resourceId: organizationId,
        details: { fields: Object.keys(patch).sort() },
      });
    });
    this.cache.invalidate(organizationId);
    return this.load(organizationId);
  }

  private async load(organizationId: string): Promise<GovernanceSettings> {
    const [row] = await this.db
      .select({
        policyCombining: organizations.policyCombining,
        rateLimitDefaults: organizations.rateLimitDefaults,
        budgetConfig: organizations.budgetConfig,
      })
      .from(organizations)
      .where(eq(organizations.id, organizationId));
    if (!row) throw new NotFoundError("organization", organizationId);
    return {
      policy_combining: row.policyCombining as CombiningStrategy,
      rate_limit_defaults: row.rateLimitDefaults as RateLimitConfig,
      budget_config: { ...BUDGET_DEFAULTS, ...(row.budgetConfig as BudgetConfig) },
    };
  }
}

import { and, asc, desc, eq, type SQL } from "drizzle-orm";
import { type RequestContext, recordAudit } from "../../audit/audit.js";
import { TtlCache } from "../../cache/ttl-cache.js";
import type { Db } from "../../db/database.js";
import { isUniqueViolation } from "../../db/errors.js";
import { selectPage } from "../../db/paginate.js";
import { type PolicyRow, policies } from "../../db/schema.js";
import { AppError, type FieldError, NotFoundError, ValidationError } from "../../errors.js";
import type { Page, PageRequest } from "../../http/pagination.js";
import { newId } from "../../ids.js";
import { type PolicyEffect, parseCedarPolicy } from "./cedar.js";
import { parseConditions } from "./condition-parser.js";
import type { Condition } from "./conditions.js";
import type { CreatePolicyBody, Policy, UpdatePolicyBody } from "./policy.schemas.js";
import type { EvaluablePolicy } from "./policy-engine.js";

export interface PolicyServiceOptions {
  /** How long an organization's policies are cached for evaluation (default 2000 ms). */
  cacheTtlMs?: number;
  now?: () => number;
}

const NAME_CONSTRAINT = "policies_organization_name_key";

function nameConflict(name: string): AppError {
  return new AppError("CONFLICT", `a policy named "${name}" already exists in this organization`, {
    field: "name",
  });
}

function toPolicyView(row: PolicyRow): Policy {
  return {
    id: row.id,
    organization_id: row.organizationId,
    name: row.name,
    description: row.description,
    effect: row.effect as PolicyEffect,
    priority: row.priority,
    enabled: row.enabled,
    conditions: row.conditions as Condition[],
    cedar: row.cedar,
    created_by: row.createdBy,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

interface Rule {
  effect: PolicyEffect;
  conditions: Condition[];
  cedar: string | null;
}

/**
 * Validates what a policy decides: either Cedar text, whose permit/forbid is the effect,
 * or an effect with conditions. `requested` is the effect the client sent, if any;
 * `stored` the current one, on update.
 */
function prepareRule(
  requested: PolicyEffect | undefined,
  stored: PolicyEffect | undefined,
  rawConditions: unknown,
  cedar: string | null,
): Rule {
  const errors: FieldError[] = [];
  if (cedar === null) {
    const { conditions, errors: conditionErrors } = parseConditions(rawConditions);
    errors.push(...conditionErrors);
    const effect = requested ?? stored;
    if (effect === undefined) {
      errors.push({ field: "effect", message: "is required unless the policy is written in Cedar" });
    }
    if (errors.length > 0 || effect === undefined) throw new ValidationError(errors);
    return { effect, conditions, cedar };
  }

  if (!Array.isArray(rawConditions) || rawConditions.length > 0) {
    errors.push({ field: "conditions", message: "must be empty for a policy written in Cedar" });
  }
  const parsed = parseCedarPolicy(cedar);
  if (!parsed.ok) errors.push({ field: "cedar", message: parsed.message });
  else if (requested !== undefined && requested !== parsed.effect) {
    const keyword = parsed.effect === "allow" ? "permit" : "forbid";
    errors.push({
      field: "effect",
      message: `is ${requested}, but the Cedar policy is a ${keyword}; omit effect or make them agree`,
    });
  }
  if (errors.length > 0 || !parsed.ok) throw new ValidationError(errors);
  return { effect: parsed.effect, conditions: [], cedar };
}

/** Organization policies: CRUD scoped to one organization, and the view evaluation reads. */
export class PolicyService {
  private readonly cache: TtlCache<readonly EvaluablePolicy[]>;

  constructor(
    private readonly db: Db,
    options: PolicyServiceOptions = {},
  ) {
    this.cache = new TtlCache(options.cacheTtlMs ?? 2000, options.now);
  }

  async create(organizationId: string, body: CreatePolicyBody, context: RequestContext): Promise<Policy> {
    const rule = prepareRule(body.effect, undefined, body.conditions ?? [], body.cedar ?? null);
    const id = newId("policy");
    try {
      const row = await this.db.transaction(async (tx) => {
        const [inserted] = await tx
          .insert(policies)
          .values({
            id,
            organizationId,
            name: body.name,
            description: body.description ?? null,
            effect: rule.effect,
            priority: body.priority ?? 0,
            enabled: body.enabled ?? true,
            conditions: rule.conditions,
            cedar: rule.cedar,
            createdBy: context.actor.id,
          })
          .returning();
        if (!inserted) throw new Error("insert returned no row");
        await recordAudit(tx, context, {
          organizationId,
          action: "policy.created",
          resourceType: "policy",
          resourceId: id,
          details: {
            name: inserted.name,
            effect: inserted.effect,
            priority: inserted.priority,
            enabled: inserted.enabled,
            language: inserted.cedar === null ? "conditions" : "cedar",
          },
        });
        return inserted;
      });
      this.cache.invalidate(organizationId);
      return toPolicyView(row);
    } catch (error) {
      if (isUniqueViolation(error, NAME_CONSTRAINT)) throw nameConflict(body.name);
      throw error;
    }
  }

  /** Policies in evaluation order: highest priority first, then id. */
  async list(
    organizationId: string,
    filters: { enabled?: boolean },
    page: PageRequest,
  ): Promise<Page<Policy>> {
    const conditions: SQL[] = [eq(policies.organizationId, organizationId)];
    if (filters.enabled !== undefined) conditions.push(eq(policies.enabled, filters.enabled));
    const where = and(...conditions);
    return selectPage(
      this.db,
      policies,
      where,
      [desc(policies.priority), asc(policies.id)],
      page,
      toPolicyView,
    );
  }

  async get(organizationId: string, id: string): Promise<Policy> {
    const [row] = await this.db
      .select()
      .from(policies)
      .where(and(eq(policies.id, id), eq(policies.organizationId, organizationId)));
    if (!row) throw new NotFoundError("policy", id);
    return toPolicyView(row);
  }

  async update(
    organizationId: string,
    id: string,
    patch: UpdatePolicyBody,
    context: RequestContext,
  ): Promise<Policy> {
    try {
      const row = await this.db.transaction(async (tx) => {
        const [current] = await tx
          .select()
          .from(policies)
          .where(and(eq(policies.id, id), eq(policies.organizationId, organizationId)))
          .for("update");
        if (!current) throw new NotFoundError("policy", id);
        const rule = prepareRule(
          patch.effect,
          current.effect as PolicyEffect,
          patch.conditions ?? current.conditions,
          patch.cedar !== undefined ? patch.cedar : current.cedar,
        );
        const [updated] = await tx
          .update(policies)
          .set({
            ...rule,
            ...(patch.name !== undefined ? { name: patch.name } : {}),
            ...(patch.description !== undefined ? { description: patch.description } : {}),
            ...(patch.priority !== undefined ? { priority: patch.priority } : {}),
            ...(patch.enabled !== undefined ? { enabled: patch.enabled } : {}),
            updatedAt: new Date(),
          })
          .where(eq(policies.id, id))
          .returning();
        if (!updated) throw new Error("update returned no row");
        await recordAudit(tx, context, {
          organizationId,
          action: "policy.updated",
          resourceType: "policy",
          resourceId: id,
          details: { name: updated.name, fields: Object.keys(patch).sort() },
        });
        return updated;
      });
      this.cache.invalidate(organizationId);
      return toPolicyView(row);
    } catch (error) {
      if (isUniqueViolation(error, NAME_CONSTRAINT)) throw nameConflict(patch.name ?? "");
      throw error;
    }
  }

  /** Hard delete: a policy leaves nothing behind but its audit events. */
  async delete(organizationId: string, id: string, context: RequestContext): Promise<void> {
    await this.db.transaction(async (tx) => {
      const [deleted] = await tx
        .delete(policies)
        .where(and(eq(policies.id, id), eq(policies.organizationId, organizationId)))
        .returning({ name: policies.name });
      if (!deleted) throw new NotFoundError("policy", id);
      await recordAudit(tx, context, {
        organizationId,
        action: "policy.deleted",
        resourceType: "policy",
        resourceId: id,
        details: { name: deleted.name },
      });
    });
    this.cache.invalidate(organizationId);
  }

  /**
   * The organization's enabled policies, highest priority first, for evaluatePolicies.
   * Cached for the TTL: this process's writes show at once, other replicas' within the TTL.
   * The rows are shared between callers and must not be changed.
   */
  listForEvaluation(organizationId: string): Promise<readonly EvaluablePolicy[]> {
    return this.cache.get(organizationId, () =>
      this.db
        .select({
          id: policies.id,
          name: policies.name,
          effect: policies.effect,
          priority: policies.priority,
          enabled: policies.enabled,
          conditions: policies.conditions,
          cedar: policies.cedar,
        })
        .from(policies)
        .where(and(eq(policies.organizationId, organizationId), eq(policies.enabled, true)))
        .orderBy(desc(policies.priority), asc(policies.id)),
    );
  }
}

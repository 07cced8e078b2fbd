import { and, asc, eq, inArray, ne, type SQL } from "drizzle-orm";
import { type RequestContext, recordAudit } from "../audit/audit.js";
import { TtlCache } from "../cache/ttl-cache.js";
import type { Db, DbOrTx } from "../db/database.js";
import { isUniqueViolation } from "../db/errors.js";
import { selectPage } from "../db/paginate.js";
import { type ApprovalRuleRow, approvalRules, externalAgents } from "../db/schema.js";
import { AppError, type FieldError, NotFoundError, ValidationError } from "../errors.js";
import type { Page, PageRequest } from "../http/pagination.js";
import { newId } from "../ids.js";
import type { ApprovalTriggers, ApprovalWorkflow } from "./approval-config.js";
import type {
  ApprovalRule,
  CreateApprovalRuleBody,
  UpdateApprovalRuleBody,
} from "./approval-rule.schemas.js";
import { approvalConfigErrors } from "./triggers/config-errors.js";

export interface ApprovalRuleServiceOptions {
  /** How long an organization's enabled rules are cached for the approval gate (default 2000 ms). */
  cacheTtlMs?: number;
  now?: () => number;
}

/** What the approval gate needs of one organization rule. */
export interface EvaluableApprovalRule {
  id: string;
  name: string;
  externalAgentIds: string[];
  triggers: ApprovalTriggers;
  workflow: ApprovalWorkflow;
  trustedUsers: string[];
}

const NAME_CONSTRAINT = "approval_rules_organization_name_key";

function nameConflict(name: string): AppError {
  return new AppError("CONFLICT", `an approval rule named "${name}" already exists in this organization`, {
    field: "name",
  });
}

function toRuleView(row: ApprovalRuleRow): ApprovalRule {
  return {
    id: row.id,
    organization_id: row.organizationId,
    name: row.name,
    enabled: row.enabled,
    external_agent_ids: row.externalAgentIds,
    triggers: row.triggers as ApprovalTriggers,
    workflow: row.workflow as ApprovalWorkflow,
    trusted_users: row.trustedUsers,
    created_by: row.createdBy,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

/** Field errors for agent ids that are not live agents of the organization. */
async function agentIdErrors(
  db: DbOrTx,
  organizationId: string,
  ids: readonly string[],
): Promise<FieldError[]> {
  if (ids.length === 0) return [];
  const found = await db
    .select({ id: externalAgents.id })
    .from(externalAgents)
    .where(
      and(
        eq(externalAgents.organizationId, organizationId),
        inArray(externalAgents.id, [...new Set(ids)]),
        ne(externalAgents.status, "deleted"),
      ),
    );
  const known = new Set(found.map((row) => row.id));
  return ids.flatMap((id, index) =>
    known.has(id)
      ? []
      : [{ field: `external_agent_ids[${index}]`, message: `${id} is not an agent of this organization` }],
  );
}

/**
 * Organization-wide approval rules: CRUD scoped to one organization, and the cached view
 * the approval gate reads on every call.
 */
export class ApprovalRuleService {
  private readonly cache: TtlCache<readonly EvaluableApprovalRule[]>;

  constructor(
    private readonly db: Db,
    options: ApprovalRuleServiceOptions = {},
  ) {
    this.cache = new TtlCache(options.cacheTtlMs ?? 2000, options.now);
  }

  async create(
    organizationId: string,
    body: CreateApprovalRuleBody,
    context: RequestContext,
  ): Promise<ApprovalRule> {
    const agentIds = [...new Set(body.external_agent_ids ?? [])];
    const config = { triggers: body.triggers, workflow: body.workflow, trusted_users: body.trusted_users };
    const errors = [
      ...approvalConfigErrors(config, ""),
      ...(await agentIdErrors(this.db, organizationId, body.external_agent_ids ?? [])),
    ];
    if (errors.length > 0) throw new ValidationError(errors);
    const id = newId("approvalRule");
    try {
      const row = await this.db.transaction(async (tx) => {
        const [inserted] = await tx
          .insert(approvalRules)
          .values({
            id,
            organizationId,
            name: body.name,
            enabled: body.enabled ?? true,
            externalAgentIds: agentIds,
            triggers: body.triggers,
            workflow: body.workflow ?? {},
            trustedUsers: body.trusted_users ?? [],
            createdBy: context.actor.id,
          })
          .returning();
        if (!inserted) throw new Error("insert returned no row");
        await recordAudit(tx, context, {
          organizationId,
          action: "approval_rule.created",
          resourceType: "approval_rule",
          resourceId: id,
          details: {
            name: inserted.name,
            enabled: inserted.enabled,
            external_agent_ids: inserted.externalAgentIds,
            triggers: Object.keys(body.triggers).sort(),
          },
        });
        return inserted;
      });
      this.cache.invalidate(organizationId);
      return toRuleView(row);
    } catch (error) {
      if (isUniqueViolation(error, NAME_CONSTRAINT)) throw nameConflict(body.name);
      throw error;
    }
  }

  /** Rules in the order the gate applies them: by name. */
  async list(
    organizationId: string,
    filters: { enabled?: boolean },
    page: PageRequest,
  ): Promise<Page<ApprovalRule>> {
    const conditions: SQL[] = [eq(approvalRules.organizationId, organizationId)];
    if (filters.enabled !== undefined) conditions.push(eq(approvalRules.enabled, filters.enabled));
    const where = and(...conditions);
    return selectPage(
      this.db,
      approvalRules,
      where,
      [asc(approvalRules.name), asc(approvalRules.id)],
      page,
      toRuleView,
    );
  }

  async get(organizationId: string, id: string): Promise<ApprovalRule> {
    const [row] = await this.db
      .select()
      .from(approvalRules)
      .where(and(eq(approvalRules.id, id), eq(approvalRules.organizationId, organizationId)));
    if (!row) throw new NotFoundError("approval rule", id);
    return toRuleView(row);
  }

  /** Changes the fields sent; the resulting rule is validated as a whole. */
  async update(
    organizationId: string,
    id: string,
    patch: UpdateApprovalRuleBody,
    context: RequestContext,
  ): Promise<ApprovalRule> {
    try {
      const row = await this.db.transaction(async (tx) => {
        const [current] = await tx
          .select()
          .from(approvalRules)
          .where(and(eq(approvalRules.id, id), eq(approvalRules.organizationId, organizationId)))
          .for("update");
        if (!current) throw new NotFoundError("approval rule", id);
        const triggers = patch.triggers ?? (current.triggers as ApprovalTriggers);
        const workflow = patch.workflow ?? (current.workflow as ApprovalWorkflow);
        const errors = [
          ...approvalConfigErrors(
            {
              triggers,
              // A stored {} means "no workflow given", which the checks leave alone.
              workflow: Object.keys(workflow).length > 0 ? workflow : undefined,
              trusted_users: patch.trusted_users,
            },
            "",
          ),
          ...(patch.external_agent_ids
            ? await agentIdErrors(tx, organizationId, patch.external_agent_ids)
            : []),
        ];
        if (errors.length > 0) throw new ValidationError(errors);
        const [updated] = await tx
          .update(approvalRules)
          .set({
            triggers,
            workflow,
            ...(patch.name !== undefined ? { name: patch.name } : {}),
            ...(patch.enabled !== undefined ? { enabled: patch.enabled } : {}),
            ...(patch.external_agent_ids !== undefined
              ? { externalAgentIds: [...new Set(patch.external_agent_ids)] }
              : {}),
            ...(patch.trusted_users !== undefined ? { trustedUsers: patch.trusted_users } : {}),
            updatedAt: new Date(),
          })
          .where(eq(approvalRules.id, id))
          .returning();
        if (!updated) throw new Error("update returned no row");
        await recordAudit(tx, context, {
          organizationId,
          action: "approval_rule.updated",
          resourceType: "approval_rule",
          resourceId: id,
          details: { name: updated.name, fields: Object.keys(patch).sort() },
        });
        return updated;
      });
      this.cache.invalidate(organizationId);
      return toRuleView(row);
    } catch (error) {
      if (isUniqueViolation(error, NAME_CONSTRAINT)) throw nameConflict(patch.name ?? "");
      throw error;
    }
  }

  /** Hard delete: a rule leaves nothing behind but its audit events. */
  async delete(organizationId: string, id: string, context: RequestContext): Promise<void> {
    await this.db.transaction(async (tx) => {
      const [deleted] = await tx
        .delete(approvalRules)
        .where(and(eq(approvalRules.id, id), eq(approvalRules.organizationId, organizationId)))
        .returning({ name: approvalRules.name });
      if (!deleted) throw new NotFoundError("approval rule", id);
      await recordAudit(tx, context, {
        organizationId,
        action: "approval_rule.deleted",
        resourceType: "approval_rule",
        resourceId: id,
        details: { name: deleted.name },
      });
    });
    this.cache.invalidate(organizationId);
  }

  /**
   * The organization's enabled rules that apply to `agentId` (scoped to it, or to every
   * agent), by name. Cached per organization for the TTL: this process's writes show at
   * once, other replicas' within the TTL. The rows are shared and must not be changed.
   */
  async forAgent(organizationId: string, agentId: string): Promise<readonly EvaluableApprovalRule[]> {
    const rules = await this.cache.get(organizationId, () => this.loadEnabled(organizationId));
    return rules.filter(
      (rule) => rule.externalAgentIds.length === 0 || rule.externalAgentIds.includes(agentId),
    );
  }

  // An async function, so the cache holds a settled promise and not a Drizzle query,
  // which would run again on every await.
  private async loadEnabled(organizationId: string): Promise<readonly EvaluableApprovalRule[]> {
    const rows = await this.db
      .select({
        id: approvalRules.id,
        name: approvalRules.name,
        externalAgentIds: approvalRules.externalAgentIds,
        triggers: approvalRules.triggers,
        workflow: approvalRules.workflow,
        trustedUsers: approvalRules.trustedUsers,
      })
      .from(approvalRules)
      .where(and(eq(approvalRules.organizationId, organizationId), eq(approvalRules.enabled, true)))
      .orderBy(asc(approvalRules.name), asc(approvalRules.id));
    return rows.map((row) => ({
      ...row,
      triggers: row.triggers as ApprovalTriggers,
      workflow: row.workflow as ApprovalWorkflow,
    }));
  }
}

import { and, arrayContains, desc, eq, ilike, ne, or, type SQL, sql } from "drizzle-orm";
import { approvalConfigErrors } from "../approvals/triggers/config-errors.js";
import { type RequestContext, recordAudit } from "../audit/audit.js";
import { TtlCache } from "../cache/ttl-cache.js";
import type { SecretBox } from "../crypto/secret-box.js";
import type { Db } from "../db/database.js";
import { isUniqueViolation } from "../db/errors.js";
import { selectPage } from "../db/paginate.js";
import { type ExternalAgentRow, externalAgents } from "../db/schema.js";
import { AppError, type FieldError, NotFoundError, ValidationError } from "../errors.js";
import type { Page, PageRequest } from "../http/pagination.js";
import { newId } from "../ids.js";
import type { Agent, CreateAgentBody, UpdateAgentBody } from "./agent.schemas.js";
import {
  checkWebhookUrl,
  type DestinationCheck,
  destinationErrors,
  prepareAuthConfig,
  preparePlatformConfig,
} from "./agent-definition.js";
import type { AgentStatus, AuthType, Platform } from "./agent-kinds.js";
import { toAgentView } from "./agent-view.js";
import { AUTH_CONFIG_SPECS } from "./auth-config.js";
import { unsealSecrets } from "./credentials.js";
import { normalizeBudgetConfig } from "./governance-config.js";
import { PLATFORM_CONFIG_SPECS } from "./platform-config.js";

export interface AgentFilters {
  platform?: Platform;
  status?: AgentStatus;
  tag?: string;
  search?: string;
}

const NAME_CONSTRAINT = "external_agents_org_name_key";

function nameConflict(name: string): AppError {
  return new AppError("CONFLICT", `an agent named "${name}" already exists in this organization`, {
    field: "name",
  });
}

const invocableKey = (organizationId: string, id: string) => `${organizationId}/${id}`;

/** `%` and `_` in a search term are literal characters, not wildcards. */
function likePattern(term: string): string {
  return `%${term.replace(/[\\%_]/g, (char) => `\\${char}`)}%`;
}

/** An agent with its credentials unsealed, as a call to it needs them. */
interface InvocableAgent {
  row: ExternalAgentRow;
  authConfig: Record<string, unknown>;
}

/**
 * How long an agent read for a call is reused. A change made through this process
 * applies at once; other replicas pick it up within this time.
 */
const INVOCABLE_AGENT_TTL_MS = 2_000;

/** The external-agent registry. Every method is scoped to one organization. */
export class ExternalAgentService {
  /** Run on every invocation: prepared once, so the query is not rebuilt each time. */
  private readonly findForInvocation;
  /** Read and unsealed once for a burst of calls, not once per call. */
  private readonly invocable = new TtlCache<InvocableAgent>(INVOCABLE_AGENT_TTL_MS);

  constructor(
    private readonly db: Db,
    private readonly box: SecretBox,
    private readonly destinations: DestinationCheck,
  ) {
    this.findForInvocation = db
      .select()
      .from(externalAgents)
      .where(
        and(
          eq(externalAgents.id, sql.placeholder("id")),
          eq(externalAgents.organizationId, sql.placeholder("organizationId")),
        ),
      )
      .prepare("steward_agent_for_invocation");
  }

  async create(organizationId: string, body: CreateAgentBody, context: RequestContext): Promise<Agent> {
    const id = newId("externalAgent");
    const authType = body.auth_type ?? "none";
    const auth = prepareAuthConfig(authType, body.auth_config ?? {}, this.box, id);
    const platform = preparePlatformConfig(body.platform, body.platform_config ?? {}, this.box, id);
    const budget = normalizeBudgetConfig(body.budget_config ?? {});
    const errors = [
      ...checkWebhookUrl(body.webhook_url),
      ...auth.errors,
      ...platform.errors,
      ...budget.errors,
      ...(body.approval_config ? approvalConfigErrors(body.approval_config, "approval_config") : []),
    ];
    if (errors.length === 0) {
      const destinations = [
        { field: "webhook_url", url: body.webhook_url },
        ...auth.destinations,
        ...platform.destinations,
      ];
      errors.push(...(await destinationErrors(this.destinations, destinations)));
    }
    if (errors.length > 0 || !auth.stored || !platform.stored) throw new ValidationError(errors);

    const values = {
      id,
      organizationId,
      name: body.name,
      description: body.description ?? null,
      platform: body.platform,
      webhookUrl: body.webhook_url,
      authType,
      authConfig: auth.stored,
      platformConfig: platform.stored,
      rateLimitConfig: body.rate_limit_config ?? {},
      budgetConfig: budget.config,
      approvalConfig: body.approval_config ?? null,
      a2aPublished: body.a2a?.published ?? false,
      capabilities: body.capabilities ?? [],
      config: body.config ?? {},
      tags: body.tags ?? [],
      status: body.status ?? "active",
      createdBy: context.actor.id,
    };
    try {
      const row = await this.db.transaction(async (tx) => {
        const [inserted] = await tx.insert(externalAgents).values(values).returning();
        if (!inserted) throw new Error("insert returned no row");
        await recordAudit(tx, context, {
          organizationId,
          action: "external_agent.created",
          resourceType: "external_agent",
          resourceId: id,
          details: { name: body.name, platform: body.platform, auth_type: authType },
        });
        return inserted;
      });
      return toAgentView(row);
    } catch (error) {
      if (isUniqueViolation(error, NAME_CONSTRAINT)) throw nameConflict(body.name);
      throw error;
    }
  }

  async list(organizationId: string, filters: AgentFilters, page: PageRequest): Promise<Page<Agent>> {
    const conditions: SQL[] = [eq(externalAgents.organizationId, organizationId)];
    conditions.push(
      filters.status ? eq(externalAgents.status, filters.status) : ne(externalAgents.status, "deleted"),
    );
    if (filters.platform) conditions.push(eq(externalAgents.platform, filters.platform));
    if (filters.tag) conditions.push(arrayContains(externalAgents.tags, [filters.tag]));
    if (filters.search) {
      const pattern = likePattern(filters.search);
      const matches = or(ilike(externalAgents.name, pattern), ilike(externalAgents.description, pattern));
      if (matches) conditions.push(matches);
    }
    const where = and(...conditions);
    return selectPage(this.db, externalAgents, where, [desc(externalAgents.id)], page, toAgentView);
  }

  async get(organizationId: string, id: string): Promise<Agent> {
    const [row] = await this.db
      .select()
      .from(externalAgents)
      .where(and(eq(externalAgents.id, id), eq(externalAgents.organizationId, organizationId)));
    if (!row) throw new NotFoundError("external agent", id);
    return toAgentView(row);
  }

  /**
   * The stored agent with its outbound credentials in plaintext, for the invoker only.
   * A credential that fails to decrypt (wrong key, tampered row) throws: no call goes
   * out with a garbled secret.
   */
  loadForInvocation(organizationId: string, id: string): Promise<InvocableAgent> {
    return this.invocable.get(invocableKey(organizationId, id), async () => {
      const [row] = await this.findForInvocation.execute({ id, organizationId });
      if (!row) throw new NotFoundError("external agent", id);
      const spec = AUTH_CONFIG_SPECS[row.authType as AuthType];
      const authConfig = unsealSecrets(row.authConfig, spec.secretPaths, this.box, {
        agentId: row.id,
        section: "auth_config",
      });
      return { row, authConfig };
    });
  }

  /**
   * The agent's platform settings in plaintext, and its hmac secret when it signs with
   * one, for the delivery worker only.
   */
  async loadForDelivery(
    organizationId: string,
    id: string,
  ): Promise<{ row: ExternalAgentRow; platformConfig: Record<string, unknown>; signingSecret?: string }> {
    const { row, authConfig } = await this.loadForInvocation(organizationId, id);
    const spec = PLATFORM_CONFIG_SPECS[row.platform as Platform];
    const platformConfig = unsealSecrets(row.platformConfig, spec.secretPaths, this.box, {
      agentId: row.id,
      section: "platform_config",
    });
    const secret = row.authType === "hmac" ? authConfig.secret : undefined;
    return { row, platformConfig, signingSecret: typeof secret === "string" ? secret : undefined };
  }

  async update(
    organizationId: string,
    id: string,
    patch: UpdateAgentBody,
    context: RequestContext,
  ): Promise<Agent> {
    try {
      const row = await this.db.transaction(async (tx) => {
        const [current] = await tx
          .select()
          .from(externalAgents)
          .where(and(eq(externalAgents.id, id), eq(externalAgents.organizationId, organizationId)))
          .for("update");
        if (!current) throw new NotFoundError("external agent", id);
        if (current.status === "deleted") {
          throw new AppError("CONFLICT", `external agent ${id} is deleted and cannot be changed`);
        }
        const changes = await this.applyPatch(current, patch);
        const [updated] = await tx
          .update(externalAgents)
          .set({ ...changes, version: current.version + 1, updatedAt: new Date() })
          .where(eq(externalAgents.id, id))
          .returning();
        if (!updated) throw new Error("update returned no row");
        await recordAudit(tx, context, {
          organizationId,
          action: "external_agent.updated",
          resourceType: "external_agent",
          resourceId: id,
          details: { fields: Object.keys(patch).sort() },
        });
        return updated;
      });
      this.invocable.invalidate(invocableKey(organizationId, id));
      return toAgentView(row);
    } catch (error) {
      if (isUniqueViolation(error, NAME_CONSTRAINT)) throw nameConflict(patch.name ?? "");
      throw error;
    }
  }

  /** Soft delete: the row stays with status `deleted`. Deleting twice succeeds. */
  async delete(organizationId: string, id: string, context: RequestContext): Promise<void> {
    await this.db.transaction(async (tx) => {
      const [current] = await tx
        .select({ status: externalAgents.status })
        .from(externalAgents)
        .where(and(eq(externalAgents.id, id), eq(externalAgents.organizationId, organizationId)))
        .for("update");
      if (!current) throw new NotFoundError("external agent", id);
      if (current.status === "deleted") return;
      const now = new Date();
      await tx
        .update(externalAgents)
        .set({ status: "deleted", deletedAt: now, updatedAt: now })
        .where(eq(externalAgents.id, id));
      await recordAudit(tx, context, {
        organizationId,
        action: "external_agent.deleted",
        resourceType: "external_agent",
        resourceId: id,
      });
    });
    this.invocable.invalidate(invocableKey(organizationId, id));
  }

  /** Validates a PATCH against the stored agent and returns the columns to write. */
  private async applyPatch(
    current: ExternalAgentRow,
    patch: UpdateAgentBody,
  ): Promise<Partial<ExternalAgentRow>> {
    const errors: FieldError[] = [];
    const changes: Partial<ExternalAgentRow> = {};
    const destinations: Array<{ field: string; url: string }> = [];
    if (patch.platform !== undefined && patch.platform !== current.platform) {
      errors.push({
        field: "platform",
        message: "cannot be changed after creation; register a new agent instead",
      });
    }
    if (patch.webhook_url !== undefined) {
      errors.push(...checkWebhookUrl(patch.webhook_url));
      destinations.push({ field: "webhook_url", url: patch.webhook_url });
      changes.webhookUrl = patch.webhook_url;
    }

    const authType = (patch.auth_type ?? current.authType) as AuthType;
    const authTypeChanged = authType !== current.authType;
    if (patch.auth_config !== undefined || authTypeChanged) {
      if (patch.auth_config === undefined && authType !== "none") {
        errors.push({ field: "auth_config", message: `is required when auth_type changes to ${authType}` });
      } else {
        const previous = authTypeChanged ? undefined : current.authConfig;
        const auth = prepareAuthConfig(authType, patch.auth_config ?? {}, this.box, current.id, previous);
        errors.push(...auth.errors);
        destinations.push(...auth.destinations);
        changes.authType = authType;
        if (auth.stored) changes.authConfig = auth.stored;
      }
    }
    if (patch.platform_config !== undefined) {
      const platform = preparePlatformConfig(
        current.platform as Platform,
        patch.platform_config,
        this.box,
        current.id,
        current.platformConfig,
      );
      errors.push(...platform.errors);
      destinations.push(...platform.destinations);
      if (platform.stored) changes.platformConfig = platform.stored;
    }
    if (patch.budget_config !== undefined) {
      const budget = normalizeBudgetConfig(patch.budget_config);
      errors.push(...budget.errors);
      changes.budgetConfig = budget.config;
    }
    if (patch.approval_config) errors.push(...approvalConfigErrors(patch.approval_config, "approval_config"));
    if (errors.length === 0) errors.push(...(await destinationErrors(this.destinations, destinations)));
    if (errors.length > 0) throw new ValidationError(errors);

    if (patch.name !== undefined) changes.name = patch.name;
    if (patch.description !== undefined) changes.description = patch.description;
    if (patch.rate_limit_config !== undefined) changes.rateLimitConfig = patch.rate_limit_config;
    if (patch.approval_config !== undefined) changes.approvalConfig = patch.approval_config;
    if (patch.a2a !== undefined) changes.a2aPublished = patch.a2a.published;
    if (patch.capabilities !== undefined) changes.capabilities = patch.capabilities;
    if (patch.config !== undefined) changes.config = patch.config;
    if (patch.tags !== undefined) changes.tags = patch.tags;
    if (patch.status !== undefined) changes.status = patch.status;
    return changes;
  }
}

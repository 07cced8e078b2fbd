import { and, count, desc, eq } from "drizzle-orm";
import { type RequestContext, recordAudit } from "../audit/audit.js";
import type { Db, DbOrTx } from "../db/database.js";
import { type ManagedAgentRow, managedAgentConfigVersions, managedAgents } from "../db/schema.js";
import { type FieldError, ValidationError } from "../errors.js";
import { type Page, type PageRequest, toPage } from "../http/pagination.js";
import {
  type ConfigDiff,
  type ConfigSource,
  configDiff,
  configSchemaErrors,
  effectiveConfig,
  environmentConfig,
} from "./agent-config.js";
import type { LifecycleEvents } from "./lifecycle-events.js";
import type { ManagedAgentService } from "./managed-agent.service.js";

/** What a running agent is sent when its configuration changes (NATS, long-poll, WebSocket). */
export interface ConfigMessage {
  type: "config";
  version: number;
  config: Record<string, unknown>;
}

/** Sends a control message to a running agent on `agents.{id}.control`, when NATS is configured. */
export interface ControlChannel {
  publishControl(agentId: string, message: Record<string, unknown>): void;
}

export interface EffectiveConfigView {
  agent_id: string;
  /** The stored version in force (0: none stored yet). */
  version: number;
  config: Record<string, unknown>;
  sources: Record<string, ConfigSource>;
}

export interface ConfigVersionView {
  version: number;
  config: Record<string, unknown>;
  author: { type: string; id: string };
  created_at: string;
  /** Against the version before it (the first version: against nothing). */
  diff: ConfigDiff;
}

/**
 * A managed agent's configuration: defaults < environment < stored versions < runtime
 * overrides. Every stored change is a new version with its author; each change is
 * pushed to the running agent.
 */
export class AgentConfigService {
  constructor(
    private readonly db: Db,
    private readonly agents: ManagedAgentService,
    private readonly events: LifecycleEvents,
    /**
     * The STEWARD_AGENT_* environment variables — the operator's own settings, so they
     * apply to the agents of the operator's organization (STEWARD_AGENTS_ORG) only.
     */
    private readonly environment: { organizationId: string; variables: Record<string, string> },
    private readonly control?: ControlChannel,
  ) {}

  async effective(organizationId: string, agentId: string): Promise<EffectiveConfigView> {
    return this.effectiveOf(await this.agents.row(this.db, organizationId, agentId));
  }

  /** Validates against the agent's schema, stores a new version and pushes it to the agent. */
  async put(
    organizationId: string,
    agentId: string,
    config: Record<string, unknown>,
    context: RequestContext,
  ): Promise<EffectiveConfigView> {
    const row = await this.db.transaction(async (tx) => {
      const current = await this.agents.row(tx, organizationId, agentId, true);
      const errors = await this.schemaErrors(tx, current, { stored: config });
      if (errors.length > 0)
        throw new ValidationError(errors, "The config does not match the agent's schema");
      const version = current.configVersion + 1;
      await tx.insert(managedAgentConfigVersions).values({
        agentId,
        organizationId,
        version,
        config,
        authorType: context.actor.type,
        authorId: context.actor.id,
      });
      const [updated] = await tx
        .update(managedAgents)
        .set({ configVersion: version, updatedAt: new Date() })
        .where(eq(managedAgents.id, agentId))
        .returning();
      await recordAudit(tx, context, {
        organizationId,
        action: "managed_agent.config_updated",
        resourceType: "managed_agent",
        resourceId: agentId,
        details: { version, keys: Object.keys(config).sort() },
      });
      return updated as ManagedAgentRow;
    });
    return this.push(row);
  }

  /** Replaces the runtime overrides (not versioned: they sit above the stored config until cleared). */
  async setOverrides(
    organizationId: string,
    agentId: string,
    overrides: Record<string, unknown>,
    context: RequestContext,
  ): Promise<EffectiveConfigView> {
    const row = await this.db.transaction(async (tx) => {
      const current = await this.agents.row(tx, organizationId, agentId, true);
      const errors = await this.schemaErrors(tx, current, { overrides }, Object.keys(overrides));
      if (errors.length > 0)
        throw new ValidationError(errors, "The overrides do not match the agent's schema");
      const [updated] = await tx
        .update(managedAgents)
        .set({ runtimeOverrides: overrides, updatedAt: new Date() })
        .where(eq(managedAgents.id, agentId))
        .returning();
      await recordAudit(tx, context, {
        organizationId,
        action: "managed_agent.overrides_updated",
        resourceType: "managed_agent",
        resourceId: agentId,
        details: { keys: Object.keys(overrides).sort() },
      });
      return updated as ManagedAgentRow;
    });
    return this.push(row);
  }

  /** Stored versions, newest first, each with its diff against the version before. */
  async history(
    organizationId: string,
    agentId: string,
    page: PageRequest,
  ): Promise<Page<ConfigVersionView>> {
    await this.agents.row(this.db, organizationId, agentId);
    const where = and(
      eq(managedAgentConfigVersions.agentId, agentId),
      eq(managedAgentConfigVersions.organizationId, organizationId),
    );
    const [rows, [totals]] = await Promise.all([
      this.db
        .select()
        .from(managedAgentConfigVersions)
        .where(where)
        .orderBy(desc(managedAgentConfigVersions.version))
        // One more than the page: the oldest row's predecessor, for its diff.
        .limit(page.limit + 1)
        .offset(page.offset),
      this.db.select({ total: count() }).from(managedAgentConfigVersions).where(where),
    ]);
    const items = rows.slice(0, page.limit).map((row, index) => ({
      version: row.version,
      config: row.config,
      author: { type: row.authorType, id: row.authorId },
      created_at: row.createdAt.toISOString(),
      diff: configDiff(rows[index + 1]?.config ?? {}, row.config),
    }));
    return toPage(items, totals?.total ?? 0, page);
  }

  /** The config message carrying the agent's effective config now. */
  async currentMessage(organizationId: string, agentId: string): Promise<ConfigMessage> {
    return this.messageFor(await this.agents.row(this.db, organizationId, agentId));
  }

  /** The config message for an agent polling over HTTP, when it is behind `afterVersion`. */
  /** Throws NotFoundError unless the organization has this agent. */
  async requireAgent(organizationId: string, agentId: string): Promise<void> {
    await this.agents.row(this.db, organizationId, agentId);
  }

  async pendingMessage(organizationId: string, agentId: string, afterVersion: number) {
    const row = await this.agents.row(this.db, organizationId, agentId);
    if (row.configVersion <= afterVersion) return undefined;
    return this.messageFor(row);
  }

  private async push(row: ManagedAgentRow): Promise<EffectiveConfigView> {
    const view = await this.effectiveOf(row);
    this.events.publish({
      type: "config",
      agent_id: row.id,
      organization_id: row.organizationId,
      version: row.configVersion,
    });
    this.control?.publishControl(row.id, { type: "config", version: view.version, config: view.config });
    return view;
  }

  /** The message carrying the agent's effective config (the process manager also starts agents with it). */
  async messageFor(row: ManagedAgentRow): Promise<ConfigMessage> {
    const view = await this.effectiveOf(row);
    return { type: "config", version: view.version, config: view.config };
  }

  private async effectiveOf(row: ManagedAgentRow): Promise<EffectiveConfigView> {
    const stored = await this.storedConfig(this.db, row);
    const { config, sources } = effectiveConfig({
      defaults: row.configDefaults,
      environment: this.environmentOf(row),
      stored,
      overrides: row.runtimeOverrides,
    });
    return { agent_id: row.id, version: row.configVersion, config, sources };
  }

  /**
   * Schema errors in the effective config a changed layer would produce — the config
   * the agent is sent, so keys the defaults or the environment supply still count.
   * With `keys` (partial overrides), only errors under those keys are reported.
   */
  private async schemaErrors(
    db: DbOrTx,
    row: ManagedAgentRow,
    change: { stored?: Record<string, unknown>; overrides?: Record<string, unknown> },
    keys?: string[],
  ): Promise<FieldError[]> {
    if (row.configSchema === null) return [];
    const { config } = effectiveConfig({
      defaults: row.configDefaults,
      environment: this.environmentOf(row),
      stored: change.stored ?? (await this.storedConfig(db, row)),
      overrides: change.overrides ?? row.runtimeOverrides,
    });
    const under = (field: string, key: string) =>
      field === `config.${key}` || field.startsWith(`config.${key}.`) || field.startsWith(`config.${key}[`);
    return configSchemaErrors(row.configSchema, config).filter(
      (error) => keys === undefined || keys.some((key) => under(error.field, key)),
    );
  }

  private environmentOf(row: ManagedAgentRow): Record<string, unknown> {
    if (row.organizationId !== this.environment.organizationId) return {};
    return environmentConfig(row.name, this.environment.variables, row.configSchema);
  }

  private async storedConfig(db: DbOrTx, row: ManagedAgentRow): Promise<Record<string, unknown>> {
    if (row.configVersion === 0) return {};
    const [version] = await db
      .select({ config: managedAgentConfigVersions.config })
      .from(managedAgentConfigVersions)
      .where(
        and(
          eq(managedAgentConfigVersions.agentId, row.id),
          eq(managedAgentConfigVersions.version, row.configVersion),
        ),
      );
    return version?.config ?? {};
  }
}

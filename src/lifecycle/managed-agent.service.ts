import { createHash, randomBytes, randomUUID } from "node:crypto";
import { and, asc, desc, eq, gt, isNull, ne, type SQL } from "drizzle-orm";
import { type RequestContext, recordAudit } from "../audit/audit.js";
import type { Principal } from "../auth/permissions.js";
import type { Db, DbOrTx } from "../db/database.js";
import { isUniqueViolation } from "../db/errors.js";
import { selectPage } from "../db/paginate.js";
import {
  agentDiscoveryTokens,
  type ManagedAgentRow,
  managedAgents,
  managedAgentTransitions,
} from "../db/schema.js";
import type { EventOutbox } from "../delivery/delivery-target.js";
import { AppError, NotFoundError, ValidationError } from "../errors.js";
import type { Page, PageRequest } from "../http/pagination.js";
import { newId } from "../ids.js";
import { definitionErrors, topicErrors } from "./agent-definition-rules.js";
import { type AgentPackage, defaultsOf } from "./agent-package.js";
import type { AgentState } from "./agent-states.js";
import type { AgentTokens } from "./agent-token.js";
import { changeState, recordTransition } from "./agent-transitions.js";
import type { LifecycleEventInput, LifecycleEvents } from "./lifecycle-events.js";
import type {
  AgentDefinitionBody,
  ListAgentsQuery,
  ManagedAgent,
  RegisterAgentBody,
  SelfRegisterBody,
} from "./managed-agent.schemas.js";
import { toManagedAgentView } from "./managed-agent.view.js";
import { agentSubjectPermissions, type NatsCredentialIssuer } from "./nats-credentials.js";

const PACKAGE_CONSTRAINT = "managed_agents_package_key";
const DEFAULT_TYPE = "agent";

export interface ManagedAgentServiceOptions {
  tokens: AgentTokens;
  events: LifecycleEvents;
  webhookEvents: EventOutbox;
  /** Set when the NATS server uses decentralized auth: registered agents get scoped NATS users. */
  natsCredentials?: NatsCredentialIssuer;
  natsCredentialsTtlS: number;
  discoveryTokenTtlS: number;
  defaultHeartbeatIntervalS: number;
}

export interface Credentials {
  token: string;
  token_expires_at: string;
  nats: {
    creds: string;
    public_key: string;
    expires_at: string;
    permissions: { publish: string[]; subscribe: string[] };
  } | null;
}

function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

function createdEvent(row: ManagedAgentRow): LifecycleEventInput {
  return {
    type: "status",
    agent_id: row.id,
    organization_id: row.organizationId,
    from: null,
    to: row.state,
    reason: "created",
  };
}

/** A discovered package registers only if its topics stay within the agent's own subjects. */
function assertOwnTopics(agent: ManagedAgentRow): void {
  const errors = topicErrors(agent.subscribedTopics, agent.findingsTopic);
  if (errors.length > 0)
    throw new ValidationError(errors, "The package's topics reach beyond the agent's own subjects");
}

/**
 * The registry of managed agents: discovery results, registration (by hand, from
 * discovery, or by the agent itself with a discovery token), lifecycle transitions
 * and the agents' own credentials.
 */
export class ManagedAgentService {
  constructor(
    private readonly db: Db,
    private readonly options: ManagedAgentServiceOptions,
  ) {}

  async list(organizationId: string, query: ListAgentsQuery, page: PageRequest): Promise<Page<ManagedAgent>> {
    const conditions: SQL[] = [
      eq(managedAgents.organizationId, organizationId),
      ne(managedAgents.state, "deleted"),
    ];
    if (query.state) conditions.push(eq(managedAgents.state, query.state));
    if (query.type) conditions.push(eq(managedAgents.type, query.type));
    if (query.name) conditions.push(eq(managedAgents.name, query.name));
    return selectPage(
      this.db,
      managedAgents,
      and(...conditions),
      [asc(managedAgents.name), asc(managedAgents.id)],
      page,
      toManagedAgentView,
    );
  }

  async get(organizationId: string, id: string): Promise<ManagedAgent> {
    return toManagedAgentView(await this.row(this.db, organizationId, id));
  }

  /** The live agent's row, or 404. */
  async load(organizationId: string, id: string): Promise<ManagedAgentRow> {
    return this.row(this.db, organizationId, id);
  }

  /** The live (not deleted) agent, or 404; `forUpdate` locks it for the caller's transaction. */
  async row(db: DbOrTx, organizationId: string, id: string, forUpdate = false): Promise<ManagedAgentRow> {
    const query = db
      .select()
      .from(managedAgents)
      .where(
        and(
          eq(managedAgents.id, id),
          eq(managedAgents.organizationId, organizationId),
          ne(managedAgents.state, "deleted"),
        ),
      );
    const [row] = forUpdate ? await query.for("update") : await query;
    if (!row) throw new NotFoundError("agent", id);
    return row;
  }

  /** Records a valid package as a `discovered` agent unless the organization already has it (same name and version). */
  async recordDiscovered(
    organizationId: string,
    pkg: AgentPackage,
    context: RequestContext,
  ): Promise<{ agent: ManagedAgent; created: boolean }> {
    const [existing] = await this.db
      .select()
      .from(managedAgents)
      .where(
        and(
          eq(managedAgents.organizationId, organizationId),
          eq(managedAgents.name, pkg.name),
          eq(managedAgents.version, pkg.version),
          ne(managedAgents.state, "deleted"),
        ),
      );
    if (existing) return { agent: toManagedAgentView(existing), created: false };
    try {
      const row = await this.db.transaction((tx) =>
        this.insert(
          tx,
          organizationId,
          "discovered",
          {
            name: pkg.name,
            version: pkg.version,
            description: pkg.description,
            type: pkg.type,
            tags: pkg.tags,
            subscribedTopics: pkg.subscribedTopics,
            findingsTopic: pkg.findingsTopic,
            command: pkg.command,
            packageDir: pkg.directory,
            resourceHints: pkg.resourceHints,
            configSchema: pkg.configSchema,
            configDefaults: pkg.configDefaults,
            heartbeatIntervalS: pkg.heartbeatIntervalS,
          },
          context,
          `discovered in ${pkg.file}`,
        ),
      );
      this.announceCreated(row);
      return { agent: toManagedAgentView(row), created: true };
    } catch (error) {
      // Another scan (a second replica, the watcher) recorded it first.
      if (!isUniqueViolation(error, PACKAGE_CONSTRAINT)) throw error;
      return this.recordDiscovered(organizationId, pkg, context);
    }
  }

  /** Registers a discovered agent (`agent_id`) or one defined in the body, and hands it credentials. */
  async register(organizationId: string, body: RegisterAgentBody, context: RequestContext) {
    const { agent_id: discoveredId, ...definition } = body;
    if (discoveredId !== undefined) {
      const extra = Object.keys(definition);
      if (extra.length > 0)
        throw new ValidationError(
          extra.map((field) => ({
            field,
            message: "not allowed with agent_id: a discovered agent keeps its package",
          })),
        );
      const { row, event } = await this.db.transaction(async (tx) => {
        const current = await this.row(tx, organizationId, discoveredId, true);
        assertOwnTopics(current);
        return changeState(tx, this.options.webhookEvents, current, "registered", "registered", context);
      });
      this.options.events.publish(event);
      return this.registration(row);
    }
    const errors = definitionErrors(definition);
    if (errors.length > 0) throw new ValidationError(errors);
    const row = await this.createRegistered(
      this.db,
      organizationId,
      definition as AgentDefinitionBody,
      context,
    );
    this.announceCreated(row);
    return this.registration(row);
  }

  /**
   * An agent registering itself with a one-time discovery token: the token is spent in
   * the same transaction that registers the agent, so a failed registration keeps it.
   */
  async selfRegister(body: SelfRegisterBody) {
    const { discovery_token: token, ...definition } = body;
    const errors = definitionErrors(definition);
    if (errors.length > 0) throw new ValidationError(errors);
    const { row, event } = await this.db.transaction(async (tx) => {
      const [spent] = await tx
        .update(agentDiscoveryTokens)
        .set({ usedAt: new Date() })
        .where(
          and(
            eq(agentDiscoveryTokens.tokenHash, hashToken(token)),
            isNull(agentDiscoveryTokens.usedAt),
            gt(agentDiscoveryTokens.expiresAt, new Date()),
          ),
        )
        .returning();
      if (!spent)
        throw new AppError("UNAUTHORIZED", "The discovery token is invalid, expired or already used");
      const context: RequestContext = { actor: { type: "system", id: `discovery_token:${spent.id}` } };
      const [discovered] = await tx
        .select()
        .from(managedAgents)
        .where(
          and(
            eq(managedAgents.organizationId, spent.organizationId),
            eq(managedAgents.name, definition.name),
            eq(managedAgents.version, definition.version),
            eq(managedAgents.state, "discovered"),
          ),
        )
        .for("update");
      if (discovered) assertOwnTopics(discovered);
      const result = discovered
        ? await changeState(
            tx,
            this.options.webhookEvents,
            discovered,
            "registered",
            "self-registered",
            context,
          )
        : {
            row: await this.createRegistered(tx, spent.organizationId, definition, context),
            event: undefined,
          };
      // A new agent is announced as a change from nothing to its first state.
      result.event ??= createdEvent(result.row);
      await tx
        .update(agentDiscoveryTokens)
        .set({ usedByAgentId: result.row.id })
        .where(eq(agentDiscoveryTokens.id, spent.id));
      return result;
    });
    if (event) this.options.events.publish(event);
    return this.registration(row);
  }

  async createDiscoveryToken(organizationId: string, ttlS: number | undefined, context: RequestContext) {
    const token = `sdt_${randomBytes(24).toString("base64url")}`;
    const id = newId("discoveryToken");
    const expiresAt = new Date(Date.now() + (ttlS ?? this.options.discoveryTokenTtlS) * 1000);
    await this.db.transaction(async (tx) => {
      await tx.insert(agentDiscoveryTokens).values({
        id,
        organizationId,
        tokenHash: hashToken(token),
        expiresAt,
        createdBy: context.actor.id,
      });
      await recordAudit(tx, context, {
        organizationId,
        action: "discovery_token.created",
        resourceType: "discovery_token",
        resourceId: id,
        details: { expires_at: expiresAt.toISOString() },
      });
    });
    return { id, token, expires_at: expiresAt.toISOString() };
  }

  /** `PUT /status`: one allowed transition, or 409 naming the allowed ones. */
  async transition(
    organizationId: string,
    id: string,
    to: AgentState,
    reason: string | null,
    context: RequestContext,
  ): Promise<ManagedAgent> {
    const { row, event } = await this.db.transaction(async (tx) => {
      const current = await this.row(tx, organizationId, id, true);
      return changeState(tx, this.options.webhookEvents, current, to, reason, context);
    });
    this.options.events.publish(event);
    return toManagedAgentView(row);
  }

  /** Every transition of the agent, oldest first. */
  async history(organizationId: string, id: string, page: PageRequest) {
    await this.row(this.db, organizationId, id);
    const where = and(
      eq(managedAgentTransitions.agentId, id),
      eq(managedAgentTransitions.organizationId, organizationId),
    );
    return selectPage(
      this.db,
      managedAgentTransitions,
      where,
      [asc(managedAgentTransitions.id)],
      page,
      (row) => ({
        id: row.id,
        from: row.fromState,
        to: row.toState,
        reason: row.reason,
        actor: { type: row.actorType, id: row.actorId },
        at: row.createdAt.toISOString(),
      }),
    );
  }

  /** A fresh token — and NATS user, when Steward issues them — (refresh by the agent, or re-issue by an admin). */
  async issueToken(organizationId: string, id: string) {
    const row = await this.row(this.db, organizationId, id);
    if (row.state === "discovered")
      throw new AppError("CONFLICT", `agent ${id} is only discovered: register it first`, {
        current: row.state,
      });
    const { token, expiresAt } = await this.options.tokens.issue(row);
    return { token, expires_at: expiresAt.toISOString(), nats: await this.natsCredentialsFor(row) };
  }

  /** Revokes every token issued to the agent so far. */
  async revokeTokens(organizationId: string, id: string, context: RequestContext): Promise<void> {
    await this.db.transaction(async (tx) => {
      const row = await this.row(tx, organizationId, id, true);
      await tx
        .update(managedAgents)
        .set({ tokenGeneration: row.tokenGeneration + 1, updatedAt: new Date() })
        .where(eq(managedAgents.id, id));
      await recordAudit(tx, context, {
        organizationId,
        action: "managed_agent.tokens_revoked",
        resourceType: "managed_agent",
        resourceId: id,
      });
    });
  }

  /** The principal of a valid, unrevoked agent token; null for any other credential. */
  async authenticate(token: string): Promise<Principal | null> {
    const claims = await this.options.tokens.verify(token);
    if (!claims) return null;
    const [row] = await this.db
      .select({ generation: managedAgents.tokenGeneration })
      .from(managedAgents)
      .where(
        and(
          eq(managedAgents.id, claims.agentId),
          eq(managedAgents.organizationId, claims.organizationId),
          ne(managedAgents.state, "deleted"),
        ),
      );
    if (!row || row.generation !== claims.generation) return null;
    return {
      type: "agent",
      id: claims.agentId,
      agentId: claims.agentId,
      organizationId: claims.organizationId,
      roles: [],
      team: null,
      platformAdmin: false,
    };
  }

  /** A live agent found by id alone, for messages whose subject names it (NATS). */
  async findById(id: string): Promise<ManagedAgentRow | undefined> {
    const [row] = await this.db
      .select()
      .from(managedAgents)
      .where(and(eq(managedAgents.id, id), ne(managedAgents.state, "deleted")))
      .orderBy(desc(managedAgents.createdAt));
    return row;
  }

  private async createRegistered(
    db: DbOrTx,
    organizationId: string,
    definition: AgentDefinitionBody,
    context: RequestContext,
  ): Promise<ManagedAgentRow> {
    const insert = (tx: DbOrTx) =>
      this.insert(
        tx,
        organizationId,
        "registered",
        {
          name: definition.name,
          version: definition.version,
          description: definition.description,
          type: definition.type ?? DEFAULT_TYPE,
          tags: definition.tags ?? [],
          subscribedTopics: definition.subscribed_topics,
          findingsTopic: definition.findings_topic,
          configSchema: definition.config_schema ?? null,
          configDefaults: definition.config_schema ? defaultsOf(definition.config_schema) : {},
          heartbeatIntervalS: definition.heartbeat_interval_s ?? this.options.defaultHeartbeatIntervalS,
        },
        context,
        "registered",
      );
    try {
      return db === this.db ? await this.db.transaction(insert) : await insert(db);
    } catch (error) {
      if (isUniqueViolation(error, PACKAGE_CONSTRAINT))
        throw new AppError(
          "CONFLICT",
          `an agent ${definition.name} ${definition.version} already exists in this organization`,
          { field: "name" },
        );
      throw error;
    }
  }

  private async insert(
    tx: DbOrTx,
    organizationId: string,
    state: AgentState,
    values: Omit<typeof managedAgents.$inferInsert, "id" | "organizationId" | "state">,
    context: RequestContext,
    reason: string,
  ): Promise<ManagedAgentRow> {
    const [row] = await tx
      .insert(managedAgents)
      .values({
        ...values,
        id: `${values.type}-${randomUUID()}`,
        organizationId,
        state,
        createdBy: context.actor.id,
      })
      .returning();
    if (!row) throw new Error("insert returned no row");
    await recordTransition(tx, row, null, state, reason, context);
    return row;
  }

  private announceCreated(row: ManagedAgentRow): void {
    this.options.events.publish(createdEvent(row));
  }

  private async registration(row: ManagedAgentRow) {
    const { token, expiresAt } = await this.options.tokens.issue(row);
    const credentials: Credentials = {
      token,
      token_expires_at: expiresAt.toISOString(),
      nats: await this.natsCredentialsFor(row),
    };
    return { agent: toManagedAgentView(row), credentials };
  }

  /** A fresh NATS user for the agent when Steward issues them (decentralized auth); null otherwise. */
  async natsCredentialsFor(row: ManagedAgentRow): Promise<Credentials["nats"]> {
    const issuer = this.options.natsCredentials;
    if (!issuer) return null;
    const subjects = {
      agentId: row.id,
      subscribedTopics: row.subscribedTopics,
      findingsTopic: row.findingsTopic,
    };
    const nats = await issuer.issue(subjects, this.options.natsCredentialsTtlS);
    return {
      creds: nats.creds,
      public_key: nats.publicKey,
      expires_at: nats.expiresAt.toISOString(),
      permissions: agentSubjectPermissions(subjects),
    };
  }
}

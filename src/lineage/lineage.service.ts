import { and, asc, desc, eq, gt, gte, inArray, lte, or, type SQL, sql } from "drizzle-orm";
import { type RequestContext, recordAudit } from "../audit/audit.js";
import type { Db } from "../db/database.js";
import { selectRows } from "../db/paginate.js";
import { type InvocationRow, invocations } from "../db/schema.js";
import { NotFoundError } from "../errors.js";
import type { PageRequest } from "../http/pagination.js";
import { type ChainVerification, verifyChain } from "./lineage-chain.js";
import { REDACTED_VALUES } from "./lineage-hash.js";

export interface LineageFilters {
  externalAgentId?: string;
  externalUserId?: string;
  externalUserEmail?: string;
  /** Matches the external user's id or email. */
  externalUser?: string;
  externalSystem?: string;
  status?: string;
  traceId?: string;
  from?: Date;
  to?: Date;
}

export interface GraphNode {
  id: string;
  type: "external_user" | "external_system" | "credential" | "agent";
  label: string;
}

export interface GraphEdge {
  from: string;
  to: string;
  invocations: number;
  cost_usd: number;
  duration_ms: number;
}

const EXPORT_BATCH = 500;
/** A graph is for looking at; beyond this many calls it stops being readable. */
const GRAPH_LIMIT = 2_000;

/** E-mail addresses compare without regard to case (served by an index on lower()). */
function sameEmail(email: string): SQL {
  return sql`lower(${invocations.externalUserEmail}) = lower(${email})`;
}

function conditions(organizationId: string, filters: LineageFilters): SQL | undefined {
  const parts: Array<SQL | undefined> = [eq(invocations.organizationId, organizationId)];
  if (filters.externalAgentId) parts.push(eq(invocations.externalAgentId, filters.externalAgentId));
  if (filters.externalUserId) parts.push(eq(invocations.externalUserId, filters.externalUserId));
  if (filters.externalUserEmail) parts.push(sameEmail(filters.externalUserEmail));
  if (filters.externalUser) {
    parts.push(or(eq(invocations.externalUserId, filters.externalUser), sameEmail(filters.externalUser)));
  }
  if (filters.externalSystem) parts.push(eq(invocations.externalSystem, filters.externalSystem));
  if (filters.status) parts.push(eq(invocations.status, filters.status));
  if (filters.traceId) parts.push(eq(invocations.traceId, filters.traceId));
  if (filters.from) parts.push(gte(invocations.createdAt, filters.from));
  if (filters.to) parts.push(lte(invocations.createdAt, filters.to));
  return and(...parts);
}

/** Reading, exporting, verifying and erasing an organization's invocation records. */
export class LineageService {
  constructor(private readonly db: Db) {}

  async list(
    organizationId: string,
    filters: LineageFilters,
    page: PageRequest,
  ): Promise<{ rows: InvocationRow[]; total: number }> {
    const where = conditions(organizationId, filters);
    return selectRows(this.db, invocations, where, [desc(invocations.id)], page);
  }

  async get(organizationId: string, invocationId: string): Promise<InvocationRow> {
    const [row] = await this.db
      .select()
      .from(invocations)
      .where(and(eq(invocations.organizationId, organizationId), eq(invocations.id, invocationId)));
    if (!row) throw new NotFoundError("invocation", invocationId);
    return row;
  }

  /** Every matching record, oldest first, read in batches so an export never holds them all. */
  async *iterate(organizationId: string, filters: LineageFilters): AsyncGenerator<InvocationRow> {
    let after = "";
    for (;;) {
      const rows = await this.db
        .select()
        .from(invocations)
        .where(and(conditions(organizationId, filters), gt(invocations.id, after)))
        .orderBy(asc(invocations.id))
        .limit(EXPORT_BATCH);
      yield* rows;
      const last = rows.at(-1);
      if (!last || rows.length < EXPORT_BATCH) return;
      after = last.id;
    }
  }

  /**
   * The call chain as a graph: external user → external system → Steward credential →
   * agent, and agent → agent for calls an agent made on through Steward.
   */
  async graph(
    organizationId: string,
    filters: LineageFilters,
  ): Promise<{ nodes: GraphNode[]; edges: GraphEdge[] }> {
    const rows = await this.db
      .select()
      .from(invocations)
      .where(conditions(organizationId, filters))
      .orderBy(asc(invocations.id))
      .limit(GRAPH_LIMIT);
    const byId = new Map(rows.map((row) => [row.id, row]));
    // A call's parent may fall outside the filter (an agent's graph holds only calls to
    // it); fetch it, or the nested call would be drawn as coming from an anonymous user.
    const outside = [...new Set(rows.map((row) => row.parentInvocationId))].filter(
      (id): id is string => id !== null && !byId.has(id),
    );
    const parents = new Map(byId);
    if (outside.length > 0) {
      const found = await this.db
        .select()
        .from(invocations)
        .where(and(eq(invocations.organizationId, organizationId), inArray(invocations.id, outside)));
      for (const row of found) parents.set(row.id, row);
    }
    const nodes = new Map<string, GraphNode>();
    const edges = new Map<string, GraphEdge>();
    const node = (type: GraphNode["type"], key: string, label: string) => {
      const id = `${type}:${key}`;
      if (!nodes.has(id)) nodes.set(id, { id, type, label });
      return id;
    };
    const edge = (from: string, to: string, row: InvocationRow) => {
      const key = `${from}>${to}`;
      const current = edges.get(key) ?? { from, to, invocations: 0, cost_usd: 0, duration_ms: 0 };
      current.invocations++;
      current.cost_usd = Math.round((current.cost_usd + (row.costUsd ?? 0)) * 1e6) / 1e6;
      current.duration_ms += row.durationMs ?? 0;
      edges.set(key, current);
    };
    for (const row of rows) {
      const agent = node("agent", row.externalAgentId, row.agentName);
      const parent = row.parentInvocationId ? parents.get(row.parentInvocationId) : undefined;
      if (parent) {
        edge(node("agent", parent.externalAgentId, parent.agentName), agent, row);
        continue;
      }
      const user = row.externalUserId ?? row.externalUserEmail ?? "anonymous";
      const path = [
        node("external_user", user, row.externalUserEmail ?? user),
        node("external_system", row.externalSystem ?? "unknown", row.externalSystem ?? "unknown"),
        node("credential", row.principalId, row.apiKeyPrefix ?? row.principalId),
        agent,
      ];
      for (let i = 1; i < path.length; i++) edge(path[i - 1] as string, path[i] as string, row);
    }
    return { nodes: [...nodes.values()], edges: [...edges.values()] };
  }

  verify(organizationId: string): Promise<ChainVerification> {
    return verifyChain(this.db, organizationId);
  }

  /** Everything held about one external user (GDPR Art. 15), by id or email. */
  async forSubject(organizationId: string, subject: string): Promise<InvocationRow[]> {
    return this.db
      .select()
      .from(invocations)
      .where(conditions(organizationId, { externalUser: subject }))
      .orderBy(asc(invocations.id));
  }

  /**
   * Erases one external user's identity and the bodies of their calls across the
   * organization. Records stay, with their component hashes, so the chain still
   * verifies; the redaction itself is audited without naming the person.
   */
  async redactSubject(organizationId: string, subject: string, context: RequestContext): Promise<number> {
    return this.db.transaction(async (tx) => {
      const redacted = await tx
        .update(invocations)
        .set({ ...REDACTED_VALUES, redactedAt: new Date() })
        .where(conditions(organizationId, { externalUser: subject }))
        .returning({ id: invocations.id });
      await recordAudit(tx, context, {
        organizationId,
        action: "lineage.subject_redacted",
        resourceType: "lineage",
        resourceId: null,
        details: { records: redacted.length },
      });
      return redacted.length;
    });
  }
}

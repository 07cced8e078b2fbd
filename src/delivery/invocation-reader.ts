import { eq, sql } from "drizzle-orm";
import type { Db } from "../db/database.js";
import { externalAgents, type InvocationRow, invocations } from "../db/schema.js";
import { TickBatcher } from "../db/tick-batcher.js";

/** What changes whenever an agent does: its version, and updated_at for writes that keep the version. */
export const AGENT_STAMP = sql<string>`${externalAgents.version} || '/' || ${externalAgents.updatedAt}`;

/** An invocation a delivery reports on, and the stamp of its agent as it is now (see AdapterCache). */
export interface ReportedInvocation {
  invocation: InvocationRow;
  agentStamp: string;
}

interface Wanted {
  organizationId: string;
  invocationId: string;
}

/**
 * Reads the invocations platform deliveries report on. A worker starts every delivery
 * it claimed at once, so the reads asked for together go out as one query.
 */
export class InvocationReader {
  private readonly batches: TickBatcher<Wanted, ReportedInvocation | undefined>;

  constructor(private readonly db: Db) {
    this.batches = new TickBatcher((wanted) => this.readMany(wanted));
  }

  /** The invocation, within the delivery's organization. */
  read(organizationId: string, invocationId: string): Promise<ReportedInvocation | undefined> {
    return this.batches.submit({ organizationId, invocationId });
  }

  private async readMany(wanted: readonly Wanted[]): Promise<Array<ReportedInvocation | undefined>> {
    const found = await this.db
      .select({ invocation: invocations, agentStamp: AGENT_STAMP })
      .from(invocations)
      .innerJoin(externalAgents, eq(externalAgents.id, invocations.externalAgentId))
      .where(sql`${invocations.id} = any(${sql.param(wanted.map((one) => one.invocationId))}::text[])`);
    const byId = new Map(found.map((row) => [row.invocation.id, row]));
    return wanted.map(({ organizationId, invocationId }) => {
      const row = byId.get(invocationId);
      return row?.invocation.organizationId === organizationId ? row : undefined;
    });
  }
}

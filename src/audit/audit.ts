import type { DbOrTx } from "../db/database.js";
import { auditEvents } from "../db/schema.js";
import { newId } from "../ids.js";

/** Who did something: a principal, or Steward itself (start-up, CLI). */
export interface Actor {
  type: "api_key" | "jwt" | "agent" | "job" | "system";
  id: string;
}

/** The caller and request that a service call acts for. */
export interface RequestContext {
  actor: Actor;
  requestId?: string;
}

export interface AuditEntry {
  organizationId: string;
  action: string;
  resourceType: string;
  resourceId: string | null;
  /** Names and non-secret facts only: never credential values. */
  details?: Record<string, unknown>;
}

/** Writes one audit event, inside the caller's transaction so it commits with the change. */
export async function recordAudit(db: DbOrTx, context: RequestContext, entry: AuditEntry): Promise<void> {
  await db.insert(auditEvents).values({
    id: newId("auditEvent"),
    organizationId: entry.organizationId,
    actorType: context.actor.type,
    actorId: context.actor.id,
    action: entry.action,
    resourceType: entry.resourceType,
    resourceId: entry.resourceId,
    requestId: context.requestId ?? null,
    details: entry.details ?? {},
  });
}

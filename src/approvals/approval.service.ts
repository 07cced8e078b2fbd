import { and, asc, count, desc, eq, inArray, isNull, lte, type SQL, sql } from "drizzle-orm";
import { type RequestContext, recordAudit } from "../audit/audit.js";
import { SYSTEM_ACTOR } from "../auth/api-key.service.js";
import type { Principal } from "../auth/permissions.js";
import type { Db, DbOrTx } from "../db/database.js";
import { isUniqueViolation } from "../db/errors.js";
import { selectRows } from "../db/paginate.js";
import { type ApprovalRow, approvalDecisions, approvals } from "../db/schema.js";
import type { EventOutbox, OutboxEvent } from "../delivery/delivery-target.js";
import { AppError, NotFoundError } from "../errors.js";
import type { PageRequest } from "../http/pagination.js";
import { newId } from "../ids.js";
import { type ApprovalWorkflow, durationSeconds } from "./approval-config.js";

const STEP_EVENTS = {
  pending: "approval.requested",
  approved: "approval.approved",
  rejected: "approval.rejected",
  expired: "approval.expired",
} as const;

export interface NewApproval {
  organizationId: string;
  invocationId: string;
  externalAgentId: string;
  reasons: string[];
  fingerprint: string;
  summary: string;
  requester: Principal;
  requesterExternalUser: string | null;
  workflow: ApprovalWorkflow;
  createdAt: Date;
  expiresAt: Date;
}

export interface ApprovalFilters {
  status?: string;
  externalAgentId?: string;
  requester?: string;
}

export type DecisionResult =
  | { state: "pending"; approval: ApprovalRow; approvals: number }
  | { state: "approved" | "rejected"; approval: ApprovalRow };

/**
 * Approval requests and the decisions on them. A request becomes approved when enough
 * distinct named approvers agree, rejected at the first rejection; the conditional
 * status change makes "decided once" hold across replicas.
 */
export class ApprovalService {
  constructor(
    private readonly db: Db,
    /** Announces each step to the organization's webhook subscribers. */
    private readonly events: EventOutbox,
  ) {}

  /**
   * Creates a request, or answers the pending one for the very same call (same
   * fingerprint). `alongside` runs in the creating transaction (queued notices).
   */
  async createOrReuse(
    approval: NewApproval,
    alongside?: (tx: DbOrTx, created: ApprovalRow) => Promise<unknown>,
  ): Promise<{ row: ApprovalRow; reused: boolean }> {
    const pending = await this.findPending(approval.organizationId, approval.fingerprint);
    if (pending) return { row: pending, reused: true };
    try {
      const row = await this.db.transaction(async (tx) => {
        const [inserted] = await tx
          .insert(approvals)
          .values({
            id: newId("approval"),
            organizationId: approval.organizationId,
            invocationId: approval.invocationId,
            externalAgentId: approval.externalAgentId,
            reasons: approval.reasons,
            fingerprint: approval.fingerprint,
            summary: approval.summary,
            requesterPrincipalId: approval.requester.id,
            requesterRoles: approval.requester.roles,
            requesterExternalUser: approval.requesterExternalUser,
            workflow: approval.workflow as Record<string, unknown>,
            requiredApprovals: approval.workflow.required_approvals ?? 1,
            expiresAt: approval.expiresAt,
            notifyAt: emailsApprovers(approval.workflow) ? approval.createdAt : null,
            escalateAt: approval.workflow.escalation_after
              ? new Date(
                  approval.createdAt.getTime() + durationSeconds(approval.workflow.escalation_after) * 1000,
                )
              : null,
          })
          .returning();
        const created = inserted as ApprovalRow;
        await this.announce(tx, created, {
          actor: { type: approval.requester.type, id: approval.requester.id },
        });
        await alongside?.(tx, created);
        return created;
      });
      return { row, reused: false };
    } catch (error) {
      // Two identical calls at once: the second finds the first one's request.
      if (!isUniqueViolation(error, "approvals_pending_fingerprint_key")) throw error;
      const winner = await this.findPending(approval.organizationId, approval.fingerprint);
      if (!winner) throw error;
      return { row: winner, reused: true };
    }
  }

  async list(organizationId: string, filters: ApprovalFilters, page: PageRequest) {
    const where = and(
      eq(approvals.organizationId, organizationId),
      filters.status ? eq(approvals.status, filters.status) : undefined,
      filters.externalAgentId ? eq(approvals.externalAgentId, filters.externalAgentId) : undefined,
      filters.requester
        ? sql`(${approvals.requesterPrincipalId} = ${filters.requester} OR ${approvals.requesterExternalUser} = ${filters.requester})`
        : undefined,
    ) as SQL;
    return selectRows(this.db, approvals, where, [desc(approvals.id)], page);
  }

  async get(organizationId: string, id: string): Promise<ApprovalRow> {
    const [row] = await this.db
      .select()
      .from(approvals)
      .where(and(eq(approvals.organizationId, organizationId), eq(approvals.id, id)));
    if (!row) throw new NotFoundError("approval", id);
    return row;
  }

  async decisions(approvalId: string) {
    return this.db
      .select()
      .from(approvalDecisions)
      .where(eq(approvalDecisions.approvalId, approvalId))
      .orderBy(asc(approvalDecisions.createdAt));
  }

  /**
   * Records one approver's decision. Refused with 403 for someone the workflow does not
   * name (or the requester, unless self-approval is allowed), 409 for a decided request
   * or a second decision by the same approver, 410 once the request has expired.
   */
  async decide(
    organizationId: string,
    id: string,
    approver: Principal,
    decision: "approve" | "reject",
    reason: string | undefined,
    context: RequestContext,
    now: Date,
  ): Promise<DecisionResult> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx
        .select()
        .from(approvals)
        .where(and(eq(approvals.organizationId, organizationId), eq(approvals.id, id)))
        .for("update");
      if (!row) throw new NotFoundError("approval", id);
      if (row.status === "expired" || (row.status === "pending" && row.expiresAt <= now)) {
        throw new AppError("GONE", `approval ${id} has expired`);
      }
      if (row.status !== "pending") throw new AppError("CONFLICT", `approval ${id} is already ${row.status}`);
      const workflow = row.workflow as ApprovalWorkflow;
      if (!mayDecide(workflow, approver, row.escalatedAt !== null)) {
        throw new AppError("FORBIDDEN", "You are not an approver of this request");
      }
      const isRequester =
        approver.id === row.requesterPrincipalId ||
        (row.requesterExternalUser !== null && approver.id === row.requesterExternalUser);
      if (isRequester && !workflow.allow_self_approval) {
        throw new AppError("FORBIDDEN", "Requesters may not approve their own calls");
      }
      try {
        await tx
          .insert(approvalDecisions)
          .values({ approvalId: id, approverId: approver.id, decision, reason });
      } catch (error) {
        if (isUniqueViolation(error))
          throw new AppError("CONFLICT", "You have already decided on this request");
        throw error;
      }
      await recordAudit(tx, context, {
        organizationId,
        action: decision === "approve" ? "approval.approved_by" : "approval.rejected_by",
        resourceType: "approval",
        resourceId: id,
        details: { reason: reason ?? null },
      });
      if (decision === "reject") {
        const rejected = await settle(tx, row, "rejected", reason, now);
        await this.announce(tx, rejected, context);
        return { state: "rejected", approval: rejected };
      }
      const [tally] = await tx
        .select({ approvals: count() })
        .from(approvalDecisions)
        .where(and(eq(approvalDecisions.approvalId, id), eq(approvalDecisions.decision, "approve")));
      const approvalsSoFar = tally?.approvals ?? 0;
      if (approvalsSoFar < row.requiredApprovals)
        return { state: "pending", approval: row, approvals: approvalsSoFar };
      const approved = await settle(tx, row, "approved", reason, now);
      await this.announce(tx, approved, context);
      return { state: "approved", approval: approved };
    });
  }

  /** Pending requests whose time is up, each claimed once (by whichever replica gets there first). */
  /**
   * Pending requests whose approvers are due an e-mail (the request, or a reminder),
   * each held for `leaseMs` so that one replica writes it; a crash before
   * `notificationSent` lets the lease run out and the e-mail is sent again.
   */
  async claimNotifications(now: Date, leaseMs: number, limit = 20): Promise<ApprovalRow[]> {
    return this.db.transaction(async (tx) => {
      const due = await tx
        .select()
        .from(approvals)
        .where(and(eq(approvals.status, "pending"), lte(approvals.notifyAt, now)))
        .orderBy(asc(approvals.notifyAt))
        .limit(limit)
        .for("update", { skipLocked: true });
      if (due.length > 0) {
        await tx
          .update(approvals)
          .set({ notifyAt: new Date(now.getTime() + leaseMs) })
          .where(
            inArray(
              approvals.id,
              due.map((row) => row.id),
            ),
          );
      }
      return due;
    });
  }

  /** Records an e-mail sent to approvers and schedules the next reminder, if any. */
  async notificationSent(approval: ApprovalRow, now: Date): Promise<void> {
    const interval = (approval.workflow as ApprovalWorkflow).reminder_interval;
    await this.db.transaction(async (tx) => {
      await tx
        .update(approvals)
        .set({
          notifyAt: interval ? new Date(now.getTime() + durationSeconds(interval) * 1000) : null,
          notificationsSent: sql`${approvals.notificationsSent} + 1`,
        })
        .where(eq(approvals.id, approval.id));
      await recordAudit(
        tx,
        { actor: SYSTEM_ACTOR },
        {
          organizationId: approval.organizationId,
          action: approval.notificationsSent === 0 ? "approval.notified" : "approval.reminded",
          resourceType: "approval",
          resourceId: approval.id,
          details: { channel: "email" },
        },
      );
    });
  }

  /** Pending requests due for escalation, each escalated once across replicas and announced. */
  async escalateDue(now: Date, limit = 50): Promise<number> {
    return this.db.transaction(async (tx) => {
      const due = await tx
        .select()
        .from(approvals)
        .where(
          and(eq(approvals.status, "pending"), isNull(approvals.escalatedAt), lte(approvals.escalateAt, now)),
        )
        .orderBy(asc(approvals.escalateAt))
        .limit(limit)
        .for("update", { skipLocked: true });
      for (const row of due) {
        const [escalated] = await tx
          .update(approvals)
          .set({ escalatedAt: now })
          .where(eq(approvals.id, row.id))
          .returning();
        await this.announce(tx, escalated as ApprovalRow, { actor: SYSTEM_ACTOR }, "approval.escalated");
      }
      return due.length;
    });
  }

  async claimExpired(now: Date, limit = 50): Promise<ApprovalRow[]> {
    return this.db.transaction(async (tx) => {
      const due = await tx
        .select()
        .from(approvals)
        .where(and(eq(approvals.status, "pending"), lte(approvals.expiresAt, now)))
        .orderBy(asc(approvals.expiresAt))
        .limit(limit)
        .for("update", { skipLocked: true });
      const settled: ApprovalRow[] = [];
      for (const row of due) {
        const onTimeout = (row.workflow as ApprovalWorkflow).on_timeout ?? "reject";
        const timedOut = await settle(
          tx,
          row,
          onTimeout === "approve" ? "approved" : "expired",
          "timed out",
          now,
        );
        await this.announce(tx, timedOut, { actor: SYSTEM_ACTOR });
        settled.push(timedOut);
      }
      return settled;
    });
  }

  /** Records that the call behind a decided request ran (or was closed), with its outcome. */
  async recordOutcome(approval: ApprovalRow, invocationStatus: string): Promise<void> {
    await recordAudit(
      this.db,
      { actor: SYSTEM_ACTOR },
      {
        organizationId: approval.organizationId,
        action: approval.status === "approved" ? "approval.executed" : "approval.closed",
        resourceType: "approval",
        resourceId: approval.id,
        details: { invocation_id: approval.invocationId, invocation_status: invocationStatus },
      },
    );
  }

  /** One step of a request, in the audit trail and to webhook subscribers, with the change. */
  private async announce(
    tx: DbOrTx,
    approval: ApprovalRow,
    context: RequestContext,
    type: OutboxEvent["type"] = STEP_EVENTS[approval.status as keyof typeof STEP_EVENTS],
  ): Promise<void> {
    await recordAudit(tx, context, {
      organizationId: approval.organizationId,
      action: type,
      resourceType: "approval",
      resourceId: approval.id,
      details: { invocation_id: approval.invocationId, reasons: approval.reasons },
    });
    await this.events.publish(tx, {
      type,
      organizationId: approval.organizationId,
      externalAgentId: approval.externalAgentId,
      invocationId: approval.invocationId,
      data: {
        approval_id: approval.id,
        invocation_id: approval.invocationId,
        external_agent_id: approval.externalAgentId,
        status: approval.status,
        reasons: approval.reasons,
        expires_at: approval.expiresAt.toISOString(),
        decided_at: approval.decidedAt?.toISOString() ?? null,
        decision_reason: approval.decisionReason,
      },
    });
  }

  private async findPending(organizationId: string, fingerprint: string): Promise<ApprovalRow | undefined> {
    const [row] = await this.db
      .select()
      .from(approvals)
      .where(
        and(
          eq(approvals.organizationId, organizationId),
          eq(approvals.fingerprint, fingerprint),
          eq(approvals.status, "pending"),
        ),
      );
    return row;
  }
}

/** Whether a workflow asks for e-mails to approvers, and says where to send them. */
export function emailsApprovers(workflow: ApprovalWorkflow): boolean {
  return (workflow.notify ?? []).includes("email") && (workflow.notify_emails ?? []).length > 0;
}

/**
 * Named approvers (roles or principal ids) decide; a workflow that names none leaves it to
 * anyone holding approvals:approve. Once escalated, the escalation targets decide too.
 */
function mayDecide(workflow: ApprovalWorkflow, approver: Principal, escalated: boolean): boolean {
  const roles = workflow.approver_roles ?? [];
  const users = workflow.approver_users ?? [];
  if (roles.length === 0 && users.length === 0) return true;
  const named = (entries: readonly string[]) =>
    entries.includes(approver.id) || approver.roles.some((role) => entries.includes(role));
  return named([...users, ...roles]) || (escalated && named(workflow.escalation_to ?? []));
}

async function settle(
  tx: DbOrTx,
  row: ApprovalRow,
  status: "approved" | "rejected" | "expired",
  reason: string | undefined,
  now: Date,
): Promise<ApprovalRow> {
  const [updated] = await tx
    .update(approvals)
    .set({ status, decidedAt: now, decisionReason: reason ?? null })
    .where(and(eq(approvals.id, row.id), eq(approvals.status, "pending")))
    .returning();
  if (!updated) throw new AppError("CONFLICT", `approval ${row.id} was decided meanwhile`);
  return updated;
}

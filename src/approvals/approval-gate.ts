import { and, count, eq, gte, inArray, ne, or, type SQL, sql } from "drizzle-orm";
import type { Db } from "../db/database.js";
import { invocations } from "../db/schema.js";
import type { InvocationOutbox } from "../delivery/invocation-outbox.js";
import type { ApprovalGate, ApprovalVerdict } from "../invocation/approval-gate.js";
import type { ApprovalService } from "./approval.service.js";
import {
  type ApprovalConfig,
  type ApprovalTriggers,
  type ApprovalWorkflow,
  durationSeconds,
} from "./approval-config.js";
import type { ApprovalRuleService } from "./approval-rule.service.js";
import { evaluateTriggers, type TriggerFacts } from "./triggers/evaluate.js";
import { approvalFingerprint } from "./triggers/fingerprint.js";
import { redactSummary } from "./triggers/redaction.js";
import { isTrustedUser } from "./triggers/trusted-users.js";

const DEFAULT_TIMEOUT_SECONDS = 24 * 3600;
const COUNTED_STATUSES = ["success", "failure", "timeout", "pending_approval", "running"];

type Review = Parameters<ApprovalGate["review"]>[0];

/** One rule in force for a call: the agent's own `approval_config` or an organization rule. */
interface RuleInForce {
  triggers: ApprovalTriggers;
  workflow: ApprovalWorkflow;
  trustedUsers: readonly string[] | undefined;
}

/**
 * The approval step of the invoke pipeline, driven by the agent's `approval_config` and
 * the organization's enabled approval rules that apply to the agent. A call that trips a
 * trigger of any of them (whose trusted users do not include the caller) gets an
 * approval request — or the one already pending for the very same call.
 */
export class ApprovalRulesGate implements ApprovalGate {
  constructor(
    private readonly db: Db,
    private readonly approvals: ApprovalService,
    private readonly organizationRules: Pick<ApprovalRuleService, "forAgent">,
    /** Asks approvers on the agent's own platform (Slack, Teams) when the workflow says so. */
    private readonly platformNotices: Pick<InvocationOutbox, "queueApprovalNotice" | "wake">,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async review(request: Review): Promise<ApprovalVerdict> {
    const own = request.agent.approvalConfig as ApprovalConfig | null;
    const rules: RuleInForce[] = [
      ...(own
        ? [{ triggers: own.triggers, workflow: own.workflow ?? {}, trustedUsers: own.trusted_users }]
        : []),
      ...(await this.organizationRules.forAgent(request.agent.organizationId, request.agent.id)),
    ].filter((rule) => !isTrustedUser(rule.trustedUsers, request.identity));
    if (rules.length === 0) return { required: false };

    const facts = await this.facts(request, rules);
    const fired = rules
      .map((rule) => ({ rule, reasons: evaluateTriggers(rule.triggers, facts(rule.triggers)) }))
      .filter(({ reasons }) => reasons.length > 0);
    const [first] = fired;
    if (!first) return { required: false };
    const reasons = [...new Set(fired.flatMap(({ reasons }) => reasons))];
    // The agent's own rule comes first when present, so its workflow wins when it fired;
    // otherwise the first organization rule by name decides who approves.
    const workflow = first.rule.workflow;
    const now = this.clock();
    const { row, reused } = await this.approvals.createOrReuse(
      {
        organizationId: request.agent.organizationId,
        invocationId: request.invocationId,
        externalAgentId: request.agent.id,
        reasons,
        fingerprint: approvalFingerprint({
          agentId: request.agent.id,
          input: request.input,
          context: request.context,
          identity: {
            userId: request.identity.userId,
            userEmail: request.identity.userEmail,
            system: request.identity.system,
            principalId: request.principal.id,
          },
        }),
        summary: redactSummary(request.input),
        requester: request.principal,
        requesterExternalUser: request.identity.userId ?? request.identity.userEmail ?? null,
        workflow,
        createdAt: now,
        expiresAt: new Date(
          now.getTime() + durationSeconds(workflow.timeout ?? DEFAULT_TIMEOUT_SECONDS) * 1000,
        ),
      },
      (tx, created) =>
        this.platformNotices.queueApprovalNotice(
          tx,
          { id: created.id, invocationId: created.invocationId, notify: workflow.notify ?? [] },
          request.agent,
        ),
    );
    if (!reused) this.platformNotices.wake();
    return {
      required: true,
      approvalId: row.id,
      reasons: row.reasons,
      expiresAt: row.expiresAt,
      ...(reused && { pendingInvocationId: row.invocationId }),
    };
  }

  /**
   * The facts each rule's triggers are evaluated against. Counts the caller's earlier
   * calls only when some trigger needs them, once per distinct rate window.
   */
  private async facts(
    request: Review,
    rules: readonly RuleInForce[],
  ): Promise<(triggers: ApprovalTriggers) => TriggerFacts> {
    const base: TriggerFacts = {
      estimatedCost: request.estimatedCost,
      environment: request.environment,
      input: request.input,
    };
    const { userId, userEmail } = request.identity;
    const first = rules.some((rule) => rule.triggers.first_invocation);
    const windows = [
      ...new Set(
        rules.flatMap((rule) => (rule.triggers.rate ? [durationSeconds(rule.triggers.rate.window)] : [])),
      ),
    ];
    if ((!first && windows.length === 0) || (!userId && !userEmail)) return () => base;
    const byUser = and(
      eq(invocations.organizationId, request.agent.organizationId),
      eq(invocations.externalAgentId, request.agent.id),
      ne(invocations.id, request.invocationId),
      // Calls that ran or wait for approval; one refused before the agent does not count.
      inArray(invocations.status, COUNTED_STATUSES),
      // Emails without regard to case, as invocations_external_email_idx holds them.
      or(
        userId ? eq(invocations.externalUserId, userId) : undefined,
        userEmail ? sql`lower(${invocations.externalUserEmail}) = lower(${userEmail})` : undefined,
      ),
    ) as SQL;
    if (first) base.calledBefore = await this.exists(byUser);
    const now = this.clock().getTime();
    const inWindow = new Map<number, number>();
    for (const seconds of windows) {
      const since = new Date(now - seconds * 1000);
      inWindow.set(seconds, await this.count(and(byUser, gte(invocations.createdAt, since)) as SQL));
    }
    return (triggers) =>
      triggers.rate
        ? { ...base, callsByUserInWindow: inWindow.get(durationSeconds(triggers.rate.window)) }
        : base;
  }

  private async exists(where: SQL): Promise<boolean> {
    const rows = await this.db.select({ id: invocations.id }).from(invocations).where(where).limit(1);
    return rows.length > 0;
  }

  private async count(where: SQL): Promise<number> {
    const [row] = await this.db.select({ total: count() }).from(invocations).where(where);
    return row?.total ?? 0;
  }
}

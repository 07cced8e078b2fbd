import { and, count, eq, gte, inArray, ne, or, type SQL } from "drizzle-orm";
import type { Db } from "../db/database.js";
import { invocations } from "../db/schema.js";
import type { ApprovalGate, ApprovalVerdict } from "../invocation/approval-gate.js";
import type { ApprovalService } from "./approval.service.js";
import { type ApprovalConfig, durationSeconds } from "./approval-config.js";
import { evaluateTriggers, type TriggerFacts } from "./triggers/evaluate.js";
import { approvalFingerprint } from "./triggers/fingerprint.js";
import { redactSummary } from "./triggers/redaction.js";
import { isTrustedUser } from "./triggers/trusted-users.js";

const DEFAULT_TIMEOUT_SECONDS = 24 * 3600;
const COUNTED_STATUSES = ["success", "failure", "timeout", "pending_approval", "running"];

type Review = Parameters<ApprovalGate["review"]>[0];

/**
 * The approval step of the invoke pipeline, driven by the agent's `approval_config`.
 * A call that trips a trigger (and whose external user is not trusted) gets an approval
 * request — or the one already pending for the very same call.
 */
export class ApprovalRulesGate implements ApprovalGate {
  constructor(
    private readonly db: Db,
    private readonly approvals: ApprovalService,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async review(request: Review): Promise<ApprovalVerdict> {
    const config = request.agent.approvalConfig as ApprovalConfig | null;
    if (!config || isTrustedUser(config.trusted_users, request.identity)) return { required: false };
    const reasons = evaluateTriggers(config.triggers, await this.facts(request, config));
    if (reasons.length === 0) return { required: false };

    const workflow = config.workflow ?? {};
    const now = this.clock();
    const { row, reused } = await this.approvals.createOrReuse({
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
      expiresAt: new Date(
        now.getTime() + durationSeconds(workflow.timeout ?? DEFAULT_TIMEOUT_SECONDS) * 1000,
      ),
    });
    return {
      required: true,
      approvalId: row.id,
      reasons: row.reasons,
      expiresAt: row.expiresAt,
      ...(reused && { pendingInvocationId: row.invocationId }),
    };
  }

  /** Counts the caller's earlier calls only when a trigger needs them. */
  private async facts(request: Review, config: ApprovalConfig): Promise<TriggerFacts> {
    const facts: TriggerFacts = {
      estimatedCost: request.estimatedCost,
      environment: request.environment,
      input: request.input,
    };
    const { userId, userEmail } = request.identity;
    const { first_invocation: first, rate } = config.triggers;
    if ((!first && !rate) || (!userId && !userEmail)) return facts;
    const byUser = and(
      eq(invocations.organizationId, request.agent.organizationId),
      eq(invocations.externalAgentId, request.agent.id),
      ne(invocations.id, request.invocationId),
      // Calls that ran or wait for approval; one refused before the agent does not count.
      inArray(invocations.status, COUNTED_STATUSES),
      or(
        userId ? eq(invocations.externalUserId, userId) : undefined,
        userEmail ? eq(invocations.externalUserEmail, userEmail) : undefined,
      ),
    ) as SQL;
    if (first) facts.priorCallsByUser = await this.count(byUser);
    if (rate) {
      const since = new Date(this.clock().getTime() - durationSeconds(rate.window) * 1000);
      facts.callsByUserInWindow = await this.count(and(byUser, gte(invocations.createdAt, since)) as SQL);
    }
    return facts;
  }

  private async count(where: SQL): Promise<number> {
    const [row] = await this.db.select({ total: count() }).from(invocations).where(where);
    return row?.total ?? 0;
  }
}

import type { Logger } from "pino";
import type { ExternalAgentService } from "../agents/agent.service.js";
import type { AuthType } from "../agents/agent-kinds.js";
import type { BudgetConfig, RateLimitConfig } from "../agents/governance-config.js";
import type { RequestContext } from "../audit/audit.js";
import type { Principal } from "../auth/permissions.js";
import type { StewardEnv } from "../config.js";
import { SecretDecryptionError } from "../crypto/secret-box.js";
import type { ApprovalRow, ExternalAgentRow, InvocationRow } from "../db/schema.js";
import { AppError } from "../errors.js";
import {
  type BudgetService,
  type BudgetTarget,
  estimateCost,
  type Reservation,
  roundMoney,
  type Settlement,
} from "../governance/budget/budget.service.js";
import { periodWindow } from "../governance/budget/budget-period.js";
import type { PolicyService } from "../governance/policies/policy.service.js";
import type { PolicyContext } from "../governance/policies/policy-context.js";
import { evaluatePolicies } from "../governance/policies/policy-engine.js";
import { limitSpecsFor } from "../governance/rate-limit/limit-specs.js";
import { type RateLimiter, RateLimiterUnavailableError } from "../governance/rate-limit/rate-limiter.js";
import type {
  GovernanceSettings,
  GovernanceSettingsService,
} from "../governance/settings/governance-settings.service.js";
import { newId } from "../ids.js";
import { canonicalJson } from "../lineage/lineage-hash.js";
import type { GovernanceOutcome, InvocationMetrics } from "../observability/metrics.js";
import type { AgentClient } from "./agent-client.js";
import type { ApprovalGate } from "./approval-gate.js";
import type { CallerIdentity } from "./caller-identity.js";
import type { InvocationJournal } from "./invocation-journal.js";
import type { GovernanceRecord } from "./invocation-response.js";
import type { InvocationStore } from "./invocation-store.js";
import { storableText } from "./storable-text.js";
import { continueTrace, formatTraceparent } from "./trace-context.js";

export interface InvokeBody {
  input: string;
  context?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  callback_url?: string;
}

export interface InvokeCall {
  principal: Principal;
  agentId: string;
  body: InvokeBody;
  identity: CallerIdentity;
  traceparent?: string;
  idempotencyKey?: string;
  ip?: string;
  userAgent?: string;
  requestId: string;
}

export interface InvocationDependencies {
  agents: ExternalAgentService;
  store: InvocationStore;
  journal: InvocationJournal;
  settings: GovernanceSettingsService;
  policies: PolicyService;
  limiter: RateLimiter;
  budgets: BudgetService;
  approvals: ApprovalGate;
  client: AgentClient;
  metrics: InvocationMetrics;
  logger: Logger;
  environment: StewardEnv;
  defaultTimeoutMs: number;
  clock?: () => Date;
}

/** The most one call may cost, whatever an agent reports (the cost columns hold numeric(20, 6)). */
const MAX_REPORTED_COST = 1e9;

/** Seconds an agent may set in `config.timeout_seconds`; anything else falls back to the default. */
const MAX_AGENT_TIMEOUT_SECONDS = 600;

/** The cost an agent reports in its answer (`usage.cost_usd` or `cost_usd`), if it reports one. */
function reportedCost(body: unknown): number | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const record = body as { cost_usd?: unknown; usage?: { cost_usd?: unknown } };
  const cost = record.usage?.cost_usd ?? record.cost_usd;
  return typeof cost === "number" && Number.isFinite(cost) && cost >= 0 ? cost : undefined;
}

/**
 * The governed invocation: permission (checked by the route), policy, rate limit,
 * budget reservation, approval gate, the outbound call, settlement — each step
 * recorded on the invocation, which joins the lineage chain when it is final.
 */
export class InvocationService {
  private readonly clock: () => Date;

  constructor(private readonly deps: InvocationDependencies) {
    this.clock = deps.clock ?? (() => new Date());
  }

  /**
   * The agent with its credentials in plaintext. Credentials that no longer decrypt (a
   * key gone, the stored value altered) fail the call before anything is sent.
   */
  private async loadAgent(organizationId: string, agentId: string) {
    try {
      return await this.deps.agents.loadForInvocation(organizationId, agentId);
    } catch (error) {
      if (!(error instanceof SecretDecryptionError)) throw error;
      throw new AppError(
        "INTERNAL_ERROR",
        `The stored credentials of external agent ${agentId} cannot be decrypted (a missing encryption key, or altered data); nothing was sent. Enter them again to use the agent.`,
      );
    }
  }

  async invoke(call: InvokeCall): Promise<InvocationRow> {
    const { store } = this.deps;
    const organizationId = call.principal.organizationId;
    const { row: agent, authConfig } = await this.loadAgent(organizationId, call.agentId);
    if (agent.status !== "active") {
      throw new AppError("AGENT_NOT_ACTIVE", `external agent ${agent.id} is ${agent.status}`, {
        status: agent.status,
      });
    }
    if (call.idempotencyKey) {
      const existing = await store.findByIdempotencyKey(organizationId, call.idempotencyKey);
      if (existing) return replay(existing, call);
    }

    const now = this.clock();
    const trace = continueTrace(call.traceparent);
    const parentInvocationId = trace.parentSpanId
      ? await store.findParentBySpan(organizationId, trace.traceId, trace.parentSpanId)
      : null;
    const { identity } = call;
    const row: InvocationRow = {
      id: newId("invocation", now.getTime()),
      organizationId,
      externalAgentId: agent.id,
      status: "running",
      idempotencyKey: call.idempotencyKey ?? null,
      externalUserId: identity.userId ?? null,
      externalUserEmail: identity.userEmail ?? null,
      externalUserName: identity.userName ?? null,
      externalUserRole: identity.userRole ?? null,
      externalSystem: identity.system ?? null,
      externalSessionId: identity.sessionId ?? null,
      externalTraceId: identity.traceId ?? null,
      externalContext: identity.context ? storableText(identity.context) : null,
      principalType: call.principal.type,
      principalId: call.principal.id,
      apiKeyPrefix: call.principal.keyPrefix ?? null,
      team: call.principal.team,
      agentName: agent.name,
      agentEndpoint: agent.webhookUrl,
      agentVersion: agent.version,
      traceId: trace.traceId,
      spanId: trace.spanId,
      parentSpanId: trace.parentSpanId,
      parentInvocationId,
      requestIp: call.ip ?? null,
      userAgent: call.userAgent ?? null,
      requestBody: storableText(call.body),
      responseStatus: null,
      responseBody: null,
      errorMessage: null,
      durationMs: null,
      estimatedCost: 0,
      reservedCost: 0,
      costUsd: null,
      degraded: false,
      degradedReasons: [],
      governance: {},
      policyIds: [],
      createdAt: now,
      completedAt: null,
      chainSeq: null,
      prevHash: null,
      recordHash: null,
      identityHash: null,
      bodyHash: null,
      redactedAt: null,
      webhookDeliveryStatus: null,
      webhookDeliveryError: null,
      webhookDeliveredAt: null,
    };

    const invocation = new GovernedCall(this.deps, call, agent, row, now);
    try {
      const final = await invocation.run(authConfig, formatTraceparent(trace));
      this.deps.metrics.invocations.inc({ status: final.status });
      return final;
    } catch (error) {
      await invocation.abandon(error);
      throw error;
    }
  }

  /**
   * Runs a held call whose approval came through, or closes it when it was rejected or
   * expired. Only the one request that decided the approval calls this.
   */
  async settleApproval(approval: ApprovalRow): Promise<InvocationRow> {
    const organizationId = approval.organizationId;
    const row = await this.deps.store.get(organizationId, approval.invocationId);
    if (row.status !== "pending_approval") return row;
    const { row: agent, authConfig } = await this.loadAgent(organizationId, row.externalAgentId);
    const settings = await this.deps.settings.get(organizationId);
    const call: InvokeCall = {
      principal: {
        type: row.principalType as Principal["type"],
        id: row.principalId,
        organizationId,
        roles: approval.requesterRoles as Principal["roles"],
        team: row.team,
        platformAdmin: false,
        keyPrefix: row.apiKeyPrefix ?? undefined,
      },
      agentId: agent.id,
      body: row.requestBody as InvokeBody,
      identity: {
        userId: row.externalUserId ?? undefined,
        userEmail: row.externalUserEmail ?? undefined,
        userName: row.externalUserName ?? undefined,
        userRole: row.externalUserRole ?? undefined,
        system: row.externalSystem ?? undefined,
        sessionId: row.externalSessionId ?? undefined,
        traceId: row.externalTraceId ?? undefined,
        context: row.externalContext ?? undefined,
      },
      ip: row.requestIp ?? undefined,
      requestId: `approval:${approval.id}`,
    };
    const held = new GovernedCall(this.deps, call, agent, row, new Date()).restore(row, {
      organizationId,
      agentId: agent.id,
      agentBudget: agent.budgetConfig as BudgetConfig,
      organizationBudget: settings.budget_config,
    });
    if (approval.status === "approved") {
      const traceparent = formatTraceparent({
        traceId: row.traceId,
        spanId: row.spanId,
        parentSpanId: null,
        sampled: true,
      });
      return held.resume(authConfig, traceparent);
    }
    return held.close(approval.status === "rejected" ? "approval_rejected" : "approval_expired");
  }
}

/**
 * The earlier call that holds this Idempotency-Key — only for the same credential,
 * agent and request: a key reused for anything else is a conflict, and never a way
 * to read another caller's result.
 */
function replay(existing: InvocationRow, call: InvokeCall): InvocationRow {
  const same =
    existing.externalAgentId === call.agentId &&
    existing.principalId === call.principal.id &&
    canonicalJson(existing.requestBody) === canonicalJson(storableText(call.body));
  if (!same) {
    throw new AppError("CONFLICT", "This Idempotency-Key was used for a different request", {
      field: "idempotency-key",
    });
  }
  return existing;
}

/** What a call's end sets on its row. */
type CallOutcome = Pick<InvocationRow, "status"> &
  Partial<
    Pick<InvocationRow, "responseStatus" | "responseBody" | "errorMessage" | "durationMs" | "costUsd">
  > & {
    /** Governance refusals give the key back, so a retry after the limit resets is a new call. */
    releaseIdempotencyKey?: boolean;
  };

/** One call's walk through the governance steps, collecting what each decided. */
class GovernedCall {
  private readonly governance: GovernanceRecord = {};
  private readonly degradedReasons: string[] = [];
  private policyIds: string[] = [];
  private estimatedCost = 0;
  /** Held from reservation until settlement; a call that dies in between gives it back. */
  private reservation: Reservation | undefined;
  private target: BudgetTarget | undefined;
  /** The call has a row in the database: from its reservation on, or held for approval. */
  private stored = false;
  private finished = false;

  constructor(
    private readonly deps: InvocationDependencies,
    private readonly call: InvokeCall,
    private readonly agent: ExternalAgentRow,
    private row: InvocationRow,
    private readonly now: Date,
  ) {}

  async run(authConfig: Record<string, unknown>, traceparent: string): Promise<InvocationRow> {
    const { deps, agent, call, now } = this;
    const settings = await deps.settings.get(agent.organizationId);

    // 1. Policy
    if (!(await this.policyAllows(settings.policy_combining))) return this.refuse("policy_denied");

    // 2. Rate limit
    const specs = limitSpecsFor(
      agent.id,
      agent.rateLimitConfig as RateLimitConfig,
      settings.rate_limit_defaults,
      call.identity.userId ?? call.identity.userEmail,
    );
    let limit: Awaited<ReturnType<RateLimiter["consume"]>>;
    try {
      limit = await deps.limiter.consume(specs, now.getTime());
    } catch (error) {
      if (!(error instanceof RateLimiterUnavailableError)) throw error;
      deps.metrics.rateLimiterUnavailable.inc({ mode: "closed" });
      deps.logger.error(
        { invocation_id: this.row.id },
        "rate limiter unavailable; refusing the call (fail mode closed)",
      );
      // Answered like any refusal: 503, naming its record.
      return this.finish({
        status: "error",
        errorMessage: "rate limiting unavailable",
        releaseIdempotencyKey: true,
      });
    }
    if (limit.degraded) {
      deps.metrics.rateLimiterUnavailable.inc({ mode: "open" });
      deps.logger.warn(
        { invocation_id: this.row.id },
        "rate limiter unavailable; call allowed (fail mode open)",
      );
      this.degradedReasons.push("rate_limiter_unavailable");
    }
    const shown = limit.exceeded ?? limit.tightest;
    this.governance.rate_limit = {
      allowed: limit.allowed,
      degraded: limit.degraded,
      ...(shown && {
        window: shown.window,
        limit: shown.limit,
        remaining: shown.remaining,
        reset_seconds: shown.resetSeconds,
      }),
    };
    if (!limit.allowed) return this.refuse("rate_limited");

    // 3. Budget
    const target: BudgetTarget = {
      organizationId: agent.organizationId,
      agentId: agent.id,
      agentBudget: agent.budgetConfig as BudgetConfig,
      organizationBudget: settings.budget_config,
    };
    this.target = target;
    this.estimatedCost = roundMoney(estimateCost(target.agentBudget));
    const opened = await deps.journal.open({
      row: { ...this.row, estimatedCost: this.estimatedCost, reservedCost: this.estimatedCost },
      budget: { target, amount: this.estimatedCost, now },
    });
    // Another request holds this Idempotency-Key: answer with that call instead.
    if (opened.kind === "duplicate") {
      this.finished = true;
      return replay(opened.row, call);
    }
    this.stored = true;
    this.row = opened.row;
    const reserved = opened.budget;
    if (!reserved.allowed) {
      this.governance.budget = {
        allowed: false,
        degraded: false,
        estimated_cost: this.estimatedCost,
        exceeded: { ...reserved.exceeded },
      };
      return this.refuse("budget_exceeded");
    }
    this.reservation = reserved.reservation;
    this.governance.budget = {
      allowed: true,
      degraded: reserved.degraded,
      estimated_cost: this.estimatedCost,
    };
    if (reserved.degraded) this.degradedReasons.push("budget_soft_limit_exceeded");

    // 4. Approval gate
    const verdict = await deps.approvals.review({
      invocationId: this.row.id,
      agent,
      input: call.body.input,
      context: call.body.context ?? {},
      identity: call.identity,
      principal: call.principal,
      environment: this.environment(),
      estimatedCost: this.estimatedCost,
    });
    if (verdict.required && verdict.pendingInvocationId) {
      // The same call is already waiting for approval: answer with that one instead. Its
      // decision was counted when it was held, so this is not a new one.
      const pending = await deps.store.discard(this.row, verdict.pendingInvocationId, (tx) =>
        deps.budgets.release(tx, reserved.reservation),
      );
      this.finished = true;
      return pending ?? this.row;
    }
    this.governance.approval = verdict.required
      ? {
          required: true,
          approval_id: verdict.approvalId,
          reasons: verdict.reasons,
          expires_at: verdict.expiresAt.toISOString(),
        }
      : { required: false };
    if (verdict.required) {
      this.decided("pending_approval");
      return deps.store.hold(this.row, {
        status: "pending_approval",
        governance: this.governance as Record<string, unknown>,
        degraded: this.degradedReasons.length > 0,
        degradedReasons: this.degradedReasons,
        policyIds: this.policyIds,
      });
    }

    this.decided("allowed");
    return this.execute(authConfig, traceparent);
  }

  /** Picks up a call whose approval came through: policy again, then the call itself. */
  async resume(authConfig: Record<string, unknown>, traceparent: string): Promise<InvocationRow> {
    const settings = await this.deps.settings.get(this.agent.organizationId);
    if (!(await this.policyAllows(settings.policy_combining))) {
      const reservation = this.reservation;
      return this.finish({ status: "policy_denied" }, reservation && { kind: "release", reservation });
    }
    return this.execute(authConfig, traceparent);
  }

  /** Ends a call that was turned down or ran out of time waiting, giving its reservation back. */
  close(status: "approval_rejected" | "approval_expired"): Promise<InvocationRow> {
    const reservation = this.reservation;
    return this.finish({ status }, reservation && { kind: "release", reservation });
  }

  /** Continues a held call from its stored record: what was decided and reserved before. */
  restore(row: InvocationRow, target: BudgetTarget): this {
    this.stored = true;
    Object.assign(this.governance, row.governance);
    this.policyIds = row.policyIds;
    this.estimatedCost = row.estimatedCost;
    this.degradedReasons.push(...row.degradedReasons);
    this.target = target;
    this.reservation = {
      organizationId: row.organizationId,
      agentId: row.externalAgentId,
      amount: row.reservedCost,
      day: periodWindow("day", row.createdAt).start,
      month: periodWindow("month", row.createdAt).start,
    };
    return this;
  }

  /** Steps 5 and 6: the outbound call, then settlement and the record, in one transaction. */
  private async execute(authConfig: Record<string, unknown>, traceparent: string): Promise<InvocationRow> {
    const { deps, agent, call } = this;
    const reservation = this.reservation;
    const target = this.target;
    // 5. The call
    const result = await deps.client.call(
      {
        agentId: agent.id,
        url: agent.webhookUrl,
        authType: agent.authType as AuthType,
        authConfig,
        timeoutMs: this.timeoutMs(),
        protocol: agent.platform === "a2a" ? "a2a" : "webhook",
      },
      {
        body: {
          input: call.body.input,
          context: call.body.context ?? {},
          metadata: call.body.metadata ?? {},
          invocation_id: this.row.id,
          trace_id: this.row.traceId,
          external_user: {
            id: call.identity.userId ?? null,
            email: call.identity.userEmail ?? null,
            name: call.identity.userName ?? null,
            role: call.identity.userRole ?? null,
          },
        },
        headers: { traceparent, "x-steward-invocation-id": this.row.id },
        messageId: this.row.id,
      },
    );
    this.governance.upstream = { attempts: result.attempts };
    const succeeded = result.outcome === "success";
    // A failed call is not charged unless the agent says what it cost.
    const reported = reportedCost(result.body);
    // An agent's own figure is believed up to the per-call cap, never beyond.
    const cap = Math.min(target?.agentBudget.max_cost_per_invocation ?? MAX_REPORTED_COST, MAX_REPORTED_COST);
    if (reported !== undefined && reported > cap) this.degradedReasons.push("reported_cost_capped");
    const cost = roundMoney(Math.min(reported ?? (succeeded ? this.estimatedCost : 0), cap));

    // 6. Settle and record, in one transaction
    const context: RequestContext = {
      actor: { type: call.principal.type, id: call.principal.id },
      requestId: call.requestId,
    };
    return this.finish(
      {
        status: result.outcome,
        responseStatus: result.status ?? null,
        responseBody: result.body === undefined ? null : storableText(result.body),
        errorMessage: result.error ? storableText(result.error) : null,
        durationMs: Math.round(result.durationMs),
        costUsd: cost,
      },
      reservation && target && { kind: "settle", reservation, cost, target, context },
    );
  }

  private async policyAllows(strategy: GovernanceSettings["policy_combining"]): Promise<boolean> {
    const decision = evaluatePolicies(
      await this.deps.policies.listForEvaluation(this.agent.organizationId),
      strategy,
      this.policyContext(),
    );
    this.policyIds = decision.decidingPolicyIds;
    this.governance.policy = {
      allowed: decision.allowed,
      reason: decision.reason,
      matched_policies: decision.matchedPolicies,
    };
    return decision.allowed;
  }

  private environment(): string {
    const requested = this.call.body.context?.environment;
    return typeof requested === "string" ? requested : this.deps.environment;
  }

  /**
   * Closes the record of a call that failed unexpectedly (a database error, say) as a
   * failure and releases its reservation, so nothing stays `running` or reserved.
   * Never throws: the original error is what the caller reports.
   */
  async abandon(cause: unknown): Promise<void> {
    if (this.finished) return;
    const reservation = this.reservation;
    this.deps.logger.error({ err: cause, invocation_id: this.row.id }, "invocation failed unexpectedly");
    try {
      await this.finish(
        // Not the agent's failure: no platform notice, and the key is free for a retry.
        { status: "error", errorMessage: "internal error", releaseIdempotencyKey: true },
        reservation && { kind: "release", reservation },
      );
    } catch (error) {
      this.deps.logger.error(
        { err: error, invocation_id: this.row.id },
        "could not record the failed invocation",
      );
    }
  }

  private policyContext(): PolicyContext {
    const { call, agent, now } = this;
    return {
      environment: this.environment(),
      ip: call.ip,
      // Only what authentication established: a role the caller merely asserts in a header
      // must not satisfy an "admins only" policy. It is available as an attribute instead.
      roles: call.principal.roles,
      team: call.principal.team,
      externalSystem: call.identity.system,
      externalUserId: call.identity.userId,
      externalUserEmail: call.identity.userEmail,
      now,
      attributes: {
        context: call.body.context ?? {},
        metadata: call.body.metadata ?? {},
        external_context: call.identity.context ?? {},
        external_user_role: call.identity.userRole ?? null,
      },
      principal: {
        type: call.principal.type,
        id: call.principal.id,
        organizationId: call.principal.organizationId,
      },
      agent: { id: agent.id, name: agent.name, platform: agent.platform, tags: agent.tags },
    };
  }

  private timeoutMs(): number {
    const seconds = (this.agent.config as { timeout_seconds?: unknown }).timeout_seconds;
    return typeof seconds === "number" && seconds > 0 && seconds <= MAX_AGENT_TIMEOUT_SECONDS
      ? seconds * 1000
      : this.deps.defaultTimeoutMs;
  }

  /** A governance refusal: recorded, and the Idempotency-Key given back for a later retry. */
  private refuse(status: "policy_denied" | "rate_limited" | "budget_exceeded"): Promise<InvocationRow> {
    this.decided(status);
    return this.finish({ status, releaseIdempotencyKey: true });
  }

  /**
   * Counts the one governance decision of a new call. What becomes of a held call later
   * (approved, rejected, expired) is its approvers' decision, not counted here.
   */
  private decided(outcome: GovernanceOutcome): void {
    this.deps.metrics.governanceDecisions.inc({ outcome });
  }

  private async finish(outcome: CallOutcome, settlement?: Settlement): Promise<InvocationRow> {
    const { releaseIdempotencyKey, ...columns } = outcome;
    const row = await this.deps.journal.close({
      row: {
        ...this.row,
        ...columns,
        governance: this.governance as Record<string, unknown>,
        degraded: this.degradedReasons.length > 0,
        degradedReasons: this.degradedReasons,
        policyIds: this.policyIds,
        estimatedCost: this.estimatedCost,
        completedAt: new Date(),
        // Only a recorded call holds its key; a call refused before that never claimed it.
        idempotencyKey: releaseIdempotencyKey || !this.stored ? null : this.row.idempotencyKey,
      },
      settlement: settlement || undefined,
      agent: this.agent,
    });
    this.finished = true;
    return row;
  }
}

import type { Logger } from "pino";
import type { DutyLeases } from "../db/duty-leases.js";
import type { InvocationService } from "../invocation/invocation.service.js";
import { settledBefore } from "../shutdown.js";
import type { ApprovalService } from "./approval.service.js";
import type { ApprovalWorkflow } from "./approval-config.js";
import { approvalEmail } from "./approval-email.js";
import type { Mailer } from "./mailer.js";

export interface ApprovalSchedulerOptions {
  approvals: ApprovalService;
  invocations: InvocationService;
  logger: Logger;
  /** Absent: approvers are not e-mailed (STEWARD_SMTP_URL unset). */
  mailer?: Mailer;
  publicUrl: string;
  /** Approval expiry, reminders and escalations run on one replica at a time. */
  leases: DutyLeases;
  intervalMs?: number;
  clock?: () => Date;
}

const APPROVALS_DUTY = "approval scheduler";
/** How long one replica holds an e-mail it is sending before another may retry it. */
const NOTIFY_LEASE_MS = 60_000;

/**
 * Notifies, reminds, escalates and expires approval requests on time, from the
 * database rather than in-memory timers: after a restart, or on whichever replica polls
 * first, due work is claimed once — an e-mail sent, an escalation announced, an expired
 * call closed (or run, when the workflow says `on_timeout: approve`).
 */
export class ApprovalScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly approvals: ApprovalService;
  private readonly invocations: InvocationService;
  private readonly logger: Logger;
  private readonly clock: () => Date;

  constructor(private readonly options: ApprovalSchedulerOptions) {
    this.approvals = options.approvals;
    this.invocations = options.invocations;
    this.logger = options.logger;
    this.clock = options.clock ?? (() => new Date());
  }

  start(): void {
    const intervalMs = this.options.intervalMs ?? 1_000;
    this.timer = setInterval(() => {
      this.running ??= this.tick(intervalMs).finally(() => {
        this.running = undefined;
      });
    }, intervalMs);
  }

  private async tick(intervalMs: number): Promise<void> {
    let ours: boolean;
    try {
      ours = await this.options.leases.hold(APPROVALS_DUTY, intervalMs);
    } catch (error) {
      this.logger.error({ err: error }, "could not take the approval scheduler's lease; will try again");
      return;
    }
    if (ours) await this.runOnce();
  }

  /** Schedules nothing more and waits for a run under way, until `deadline` at most. */
  async stop(deadline?: AbortSignal): Promise<void> {
    clearInterval(this.timer);
    if (this.running) await settledBefore([this.running], deadline);
  }

  /** Escalates and settles every request that is due now. */
  async runOnce(): Promise<void> {
    try {
      await this.notify();
      await this.approvals.escalateDue(this.clock());
      for (const approval of await this.approvals.claimExpired(this.clock())) {
        const invocation = await this.invocations.settleApproval(approval);
        await this.approvals.recordOutcome(approval, invocation.status);
      }
    } catch (error) {
      this.logger.error({ err: error }, "could not expire approval requests; will try again");
    }
  }

  /** E-mails approvers about requests due a notice or a reminder; a failed send is retried after its lease. */
  private async notify(): Promise<void> {
    const { mailer, publicUrl } = this.options;
    if (!mailer) return;
    for (const approval of await this.approvals.claimNotifications(this.clock(), NOTIFY_LEASE_MS)) {
      const to = (approval.workflow as ApprovalWorkflow).notify_emails ?? [];
      try {
        await mailer.send(approvalEmail(approval, to, publicUrl));
        await this.approvals.notificationSent(approval, this.clock());
      } catch (error) {
        this.logger.warn(
          { err: error, approval_id: approval.id },
          "could not e-mail approvers; will try again",
        );
      }
    }
  }
}

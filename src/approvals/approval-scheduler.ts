import type { Logger } from "pino";
import type { InvocationService } from "../invocation/invocation.service.js";
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
  intervalMs?: number;
  clock?: () => Date;
}

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
    this.timer = setInterval(() => {
      this.running ??= this.runOnce().finally(() => {
        this.running = undefined;
      });
    }, this.options.intervalMs ?? 1_000);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
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

import type { Logger } from "pino";
import type { InvocationService } from "../invocation/invocation.service.js";
import type { ApprovalService } from "./approval.service.js";

/**
 * Escalates and expires approval requests on time, from the database rather than
 * in-memory timers: after a restart, or on whichever replica polls first, due work is
 * claimed once — an escalation announced, an expired call closed (or run, when the
 * workflow says `on_timeout: approve`).
 */
export class ApprovalScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly approvals: ApprovalService,
    private readonly invocations: InvocationService,
    private readonly logger: Logger,
    private readonly intervalMs = 1_000,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.runOnce().finally(() => {
        this.running = undefined;
      });
    }, this.intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** Escalates and settles every request that is due now. */
  async runOnce(): Promise<void> {
    try {
      await this.approvals.escalateDue(this.clock());
      for (const approval of await this.approvals.claimExpired(this.clock())) {
        const invocation = await this.invocations.settleApproval(approval);
        await this.approvals.recordOutcome(approval, invocation.status);
      }
    } catch (error) {
      this.logger.error({ err: error }, "could not expire approval requests; will try again");
    }
  }
}

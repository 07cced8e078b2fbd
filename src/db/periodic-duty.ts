import type { Logger } from "pino";
import { settledBefore } from "../shutdown.js";
import type { DutyLeases } from "./duty-leases.js";

export interface PeriodicDutyOptions {
  /** The duty's name in the lease table. */
  duty: string;
  leases: DutyLeases;
  intervalMs: number;
  logger: Logger;
  /** One pass of the duty; a failed pass is logged and the next tick tries again. */
  pass: () => Promise<unknown>;
}

/**
 * Runs a background duty every `intervalMs` on the one replica holding its lease. A
 * pass still under way when the next tick comes is not doubled: the tick renews the
 * lease instead, so a pass longer than the lease keeps it, and no other replica starts
 * the same duty beside it.
 */
export class PeriodicDuty {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private renewing: Promise<void> | undefined;

  constructor(private readonly options: PeriodicDutyOptions) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.running) {
        // One renewal at a time: on a slow database they would pile up.
        this.renewing ??= this.renew().finally(() => {
          this.renewing = undefined;
        });
        return;
      }
      this.running = this.tick().finally(() => {
        this.running = undefined;
      });
    }, this.options.intervalMs);
  }

  /** Runs no more passes and waits for one under way, until `deadline` at most. */
  async stop(deadline?: AbortSignal): Promise<void> {
    clearInterval(this.timer);
    // A renewal finishing after the lease is released would take it again.
    const underWay = [this.running, this.renewing].filter((work) => work !== undefined);
    if (underWay.length > 0) await settledBefore(underWay, deadline);
  }

  private async renew(): Promise<void> {
    const { duty, leases, intervalMs, logger } = this.options;
    try {
      await leases.hold(duty, intervalMs);
    } catch (error) {
      logger.warn({ err: error, duty }, "could not renew a duty's lease during a long pass");
    }
  }

  private async tick(): Promise<void> {
    const { duty, leases, intervalMs, logger, pass } = this.options;
    try {
      if (await leases.hold(duty, intervalMs)) await pass();
    } catch (error) {
      logger.error({ err: error, duty }, "background duty failed; will try again");
    }
  }
}

import type { Logger } from "pino";
import type { DutyLeases } from "../db/duty-leases.js";
import { PeriodicDuty } from "../db/periodic-duty.js";
import type { JobResults } from "./job-results.js";
import type { JobStore } from "./job-store.js";

const DUTY = "lost job sweep";
/** Jobs failed per pass; the next pass takes the rest. */
const BATCH = 100;
/**
 * How long a job claimed by an earlier delivery may wait for the next (workers busy or
 * away) before it too is failed as lost: a day, the longest a job may run.
 */
const WAITING_GIVEN_UP_MS = 24 * 60 * 60 * 1000;
export const WORKER_LOST = {
  type: "WorkerLost",
  message: "the workers running this job stopped before it finished, and JetStream delivers it no more",
};

export interface LostJobSweeperOptions {
  store: JobStore;
  results: JobResults;
  leases: DutyLeases;
  logger: Logger;
  /**
   * How long a running job may go unclaimed before no delivery can come for it: past
   * JetStream's ack wait and its longest redelivery delay, a message it still holds
   * would have been delivered and claimed the job.
   */
  lostAfterMs: number;
  intervalMs: number;
}

/**
 * Fails jobs whose worker died during their last delivery. JetStream stops delivering a
 * message after max_deliver without telling anyone, so such a job would stay `running`
 * for good: it is failed as WorkerLost and its result event published, by one replica.
 */
export class LostJobSweeper {
  private readonly duty: PeriodicDuty;

  constructor(private readonly options: LostJobSweeperOptions) {
    this.duty = new PeriodicDuty({ ...options, duty: DUTY, pass: () => this.sweep() });
  }

  start(): void {
    this.duty.start();
  }

  stop(deadline?: AbortSignal): Promise<void> {
    return this.duty.stop(deadline);
  }

  /** Fails the lost jobs found now; answers how many. */
  async sweep(): Promise<number> {
    const { store, results, logger, lostAfterMs } = this.options;
    const lost = await store.lost(lostAfterMs, WAITING_GIVEN_UP_MS, BATCH);
    for (const row of lost) {
      await results.failOutsideRun({ job_id: row.id, trace_id: row.traceId }, WORKER_LOST);
    }
    if (lost.length > 0) logger.warn({ count: lost.length }, "failed jobs whose workers were lost");
    return lost.length;
  }
}

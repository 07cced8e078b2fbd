import type { TestContext } from "vitest";

/** One fault or input class as the chaos summary table shows it. */
export interface ChaosTally {
  /** The fault or input class, as a reader of the table would name it. */
  fault: string;
  /** Cases tried: requests sent under the fault, inputs fuzzed, routes probed… */
  tried: number;
  /** Cases that ended as specified. */
  handled: number;
  /** Accepted requests, jobs or deliveries that left no record or never arrived; null where nothing can be lost. */
  lost: number | null;
  /** Secrets found where they must never be; null where no secret is in play. */
  leaked: number | null;
}

declare module "vitest" {
  interface TaskMeta {
    chaos?: ChaosTally[];
  }
}

/**
 * Keeps a fault's figures on the test for the summary table (test/chaos/summary-reporter.ts),
 * then holds them to the suite's contract: something was tried, every case was handled as
 * specified, nothing was lost and nothing leaked. The checks are soft: a test tallying
 * several classes still records and checks every one of them, and fails at its end.
 */
export function tally(context: TestContext, row: ChaosTally): void {
  context.task.meta.chaos ??= [];
  context.task.meta.chaos.push(row);
  context.expect.soft(row.tried, `${row.fault}: nothing was tried`).toBeGreaterThan(0);
  context.expect.soft(row, row.fault).toEqual({
    ...row,
    handled: row.tried,
    lost: row.lost === null ? null : 0,
    leaked: row.leaked === null ? null : 0,
  });
}

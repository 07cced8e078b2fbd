import { expect, type TestContext } from "vitest";

/** One fault or input class as the chaos summary table shows it. */
export interface ChaosTally {
  /** The fault or input class, as a reader of the table would name it. */
  fault: string;
  /** Cases tried: requests sent under the fault, inputs fuzzed, routes probed… */
  tried: number;
  /** Cases that ended as specified. */
  handled: number;
  /** Accepted requests, jobs or deliveries that left no record or never arrived. */
  lost: number;
  /** Secrets found where they must never be. */
  leaked: number;
}

declare module "vitest" {
  interface TaskMeta {
    chaos?: ChaosTally[];
  }
}

/**
 * Keeps a fault's figures on the test for the summary table (test/chaos/summary-reporter.ts),
 * then holds them to the suite's contract: something was tried, every case was handled as
 * specified, nothing was lost and nothing leaked. Figures are kept first, so a failing
 * class still shows in the table with its counts.
 */
export function tally(context: TestContext, row: ChaosTally): void {
  context.task.meta.chaos ??= [];
  context.task.meta.chaos.push(row);
  expect(row.tried, `${row.fault}: nothing was tried`).toBeGreaterThan(0);
  expect(row, row.fault).toEqual({ ...row, handled: row.tried, lost: 0, leaked: 0 });
}

/** Budget periods are UTC calendar days and months; they roll over by themselves. */

export type BudgetPeriod = "day" | "month";

export interface PeriodWindow {
  period: BudgetPeriod;
  /** First day of the period, as YYYY-MM-DD (the `period_start` column). */
  start: string;
  /** When the next period begins. */
  resetAt: Date;
}

export function periodWindow(period: BudgetPeriod, now: Date): PeriodWindow {
  const year = now.getUTCFullYear();
  const month = now.getUTCMonth();
  if (period === "day") {
    const day = now.getUTCDate();
    return {
      period,
      start: new Date(Date.UTC(year, month, day)).toISOString().slice(0, 10),
      resetAt: new Date(Date.UTC(year, month, day + 1)),
    };
  }
  return {
    period,
    start: new Date(Date.UTC(year, month, 1)).toISOString().slice(0, 10),
    resetAt: new Date(Date.UTC(year, month + 1, 1)),
  };
}

import type { BenchReport } from "../report.js";
import type { PrimitiveFigures, PrimitiveRun } from "./primitives.js";

const row = (name: string, run: PrimitiveRun, extra: string | number = "") => [
  name,
  Math.round(run.opsPerSecond),
  run.p50Ms,
  run.p99Ms,
  run.inFlight,
  extra,
];

/** Adds the governance primitives' table and target check to the report. */
export function reportPrimitives(report: BenchReport, figures: PrimitiveFigures): void {
  report.figures.primitives = figures;
  const { rateLimit, budget } = figures;
  report.tables.push({
    title: "Governance primitives, from one process (Redis, PostgreSQL)",
    columns: ["primitive", "operations/s", "p50 ms", "p99 ms", "in flight", "degraded"],
    rows: [
      row(
        "rate-limit decision (minute, hour, day), 1,000 agents",
        rateLimit.spread,
        rateLimit.spread.degraded,
      ),
      row("rate-limit decision, one agent", rateLimit.hot, rateLimit.hot.degraded),
      row("budget reservation + settlement, one agent", budget.oneAgent),
      row("budget reservation + settlement, 1,000 agents", budget.thousandAgents),
    ],
  });
  const slowest = Math.min(rateLimit.spread.opsPerSecond, rateLimit.hot.opsPerSecond);
  report.targets.push({
    target: "rate-limit decisions ≥ 40,000/s from one process",
    measured: `${Math.round(slowest)}/s (the slower of spread and one agent)`,
    met: slowest >= 40_000,
  });
}

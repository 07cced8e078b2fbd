import type { BenchReport } from "../report.js";
import type { DeliveryFigures } from "./delivery.js";
import type { ExecutorFigures } from "./executor.js";

/** Adds the delivery run's table and target checks to the report. */
export function reportDelivery(report: BenchReport, figures: DeliveryFigures): void {
  report.figures.delivery = figures;
  report.tables.push({
    title: `Delivery: a backlog of ${figures.backlog} outbox rows over ${figures.endpoints} endpoints to a local sink`,
    columns: ["", "value"],
    rows: [
      ["deliveries/s (backlog drained)", Math.round(figures.deliveriesPerSecond)],
      ["invocation → delivery p50 ms (1 connection)", figures.invokeToDeliveryP50Ms],
      ["invocation → delivery p99 ms", figures.invokeToDeliveryP99Ms],
      [
        "duplicates / missing / not delivered",
        `${figures.duplicates} / ${figures.missing} / ${figures.notDelivered}`,
      ],
      ["Steward peak RSS", `${figures.peakRssMb} MB`],
    ],
  });
  report.targets.push(
    {
      target: "delivery ≥ 2,000/s",
      measured: `${Math.round(figures.deliveriesPerSecond)}/s`,
      met: figures.deliveriesPerSecond >= 2000,
    },
    {
      target: "delivery: none lost, none twice",
      measured: `${figures.missing} missing, ${figures.duplicates} duplicates, ${figures.notDelivered} not delivered`,
      met: figures.missing === 0 && figures.duplicates === 0 && figures.notDelivered === 0,
    },
  );
}

/** Adds the executor run's table and target checks to the report. */
export function reportExecutor(report: BenchReport, figures: ExecutorFigures): void {
  report.figures.executor = figures;
  report.tables.push({
    title: `Executor: trivial jobs through JetStream with Postgres checkpoints (STEWARD_JOBS_CONCURRENCY=${figures.concurrency})`,
    columns: ["", "value"],
    rows: [
      [`jobs/s (${figures.jobs} published at once)`, Math.round(figures.jobsPerSecond)],
      ["Steward CPU ms/job (same run)", Number(figures.cpuMsPerJob.toFixed(2))],
      [`publish → completed event p50 ms (${Math.round(figures.pacedJobsPerSecond)} jobs/s)`, figures.p50Ms],
      ["publish → completed event p99 ms", figures.p99Ms],
      ["node → Redis subscriber p50 ms", figures.streamP50Ms],
      ["node → Redis subscriber p99 ms", figures.streamP99Ms],
      [
        "completed events / stored completed / failed",
        `${figures.completed} / ${figures.storedCompleted} / ${figures.failed}`,
      ],
      ["Steward peak RSS", `${figures.peakRssMb} MB`],
    ],
  });
  report.targets.push(
    {
      target: "executor ≥ 1,000 trivial jobs/s",
      measured: `${Math.round(figures.jobsPerSecond)}/s`,
      met: figures.jobsPerSecond >= 1000,
    },
    {
      target: "executor: every job completed once, none failed",
      measured: `${figures.completed} completed, ${figures.storedCompleted} stored, ${figures.failed} failed`,
      met: figures.failed === 0 && figures.completed === figures.storedCompleted,
    },
  );
}

/** Peak RSS of every Steward process the run started, against the 300 MB target. */
export function reportMemory(report: BenchReport, peaks: Record<string, number>): void {
  const highest = Math.max(...Object.values(peaks));
  report.targets.push({
    target: "peak RSS ≤ 300 MB in each run",
    measured: Object.entries(peaks)
      .map(([run, peak]) => `${run} ${peak} MB`)
      .join(", "),
    met: highest <= 300,
  });
}

import type { BenchReport } from "../report.js";
import type { InvokeFigures } from "./invoke.js";

const NAMES: Record<string, string> = {
  direct: "direct to the agent",
  proxy: "bare undici proxy",
  steward: "Steward invoke",
};

/** Adds an invoke run's tables and target checks to the report. */
export function reportInvoke(report: BenchReport, figures: InvokeFigures, title: string): void {
  report.figures[`invoke_${figures.mode}`] = figures;
  report.tables.push({
    title,
    columns: ["contender", "requests/s", "p50 ms", "p99 ms", "errors", "CPU ms/request"],
    rows: [
      ...Object.entries(figures.contenders).map(([name, contender]) => [
        NAMES[name] ?? name,
        Math.round(contender.requestsPerSecond),
        contender.p50Ms,
        contender.p99Ms,
        contender.errors,
        contender.cpuMsPerRequest,
      ]),
      ["Steward / bare proxy (median of rounds)", figures.stewardOverProxy.toFixed(3), "", "", "", ""],
      ["Steward peak RSS", `${figures.peakRssMb} MB`, "", "", "", ""],
      [
        "2xx answers / invocations recorded / requests sent",
        `${figures.okResponses} / ${figures.recordedInvocations} / ${figures.sentRequests}`,
        "",
        "",
        "",
        "",
      ],
    ],
  });
  const steward = figures.contenders.steward;
  const unrecorded = Math.max(0, figures.okResponses - figures.recordedInvocations);
  const unsent = Math.max(0, figures.recordedInvocations - figures.sentRequests);
  report.targets.push({
    target: `${figures.mode}: no errors, every 2xx recorded, no record without a request`,
    measured: `${steward?.errors ?? 0} errors, ${unrecorded} unrecorded, ${unsent} unexplained`,
    met: (steward?.errors ?? 0) === 0 && unrecorded === 0 && unsent === 0,
  });
  if (figures.mode === "postgres") {
    report.targets.push({
      target: "Steward invoke ≥ 0.5 × bare proxy",
      measured: `${figures.stewardOverProxy.toFixed(3)} ×`,
      met: figures.stewardOverProxy >= 0.5,
    });
  } else {
    report.targets.push({
      target: "embedded default ≥ 1,000 invokes/s",
      measured: `${Math.round(steward?.requestsPerSecond ?? 0)}/s`,
      met: (steward?.requestsPerSecond ?? 0) >= 1000,
    });
  }
  if (figures.addedLatency) {
    const { addedLatency } = figures;
    report.tables.push({
      title: "Added latency over the bare proxy (1 connection, sequential calls)",
      columns: ["", "p50 ms", "p99 ms"],
      rows: [
        ["Steward minus bare proxy", addedLatency.p50Ms, addedLatency.p99Ms],
        ["bare proxy alone (p50)", addedLatency.proxyP50Ms, ""],
        ["Steward alone (p50)", addedLatency.stewardP50Ms, ""],
      ],
    });
    report.targets.push({
      target: "added latency ≤ 1 ms p50, ≤ 5 ms p99",
      measured: `${addedLatency.p50Ms.toFixed(2)} ms p50, ${addedLatency.p99Ms.toFixed(2)} ms p99`,
      met: addedLatency.p50Ms <= 1 && addedLatency.p99Ms <= 5,
    });
  }
}

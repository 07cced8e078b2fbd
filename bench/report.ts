import { mkdir, writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { dirname } from "node:path";
import type { BenchSettings } from "./settings.js";
import { STEWARD_ALLOCATOR, STEWARD_HEAP } from "./steward.js";

/** One table of the printed report. */
export interface Table {
  title: string;
  columns: string[];
  rows: Array<Array<string | number>>;
}

/** A performance target of the issue, and whether this run met it. */
export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean;
}

/** Everything one run found: printed as tables, written as JSON. */
export interface BenchReport {
  startedAt: string;
  settings: Pick<BenchSettings, "smoke" | "roundSeconds" | "rounds" | "connections">;
  machine: {
    cpus: number;
    model: string;
    node: string;
    pinning: string;
    stewardHeap: string;
    stewardAllocator: string;
  };
  tables: Table[];
  targets: TargetCheck[];
  figures: Record<string, unknown>;
}

export function newReport(settings: BenchSettings): BenchReport {
  const processors = cpus();
  return {
    startedAt: new Date().toISOString(),
    settings: {
      smoke: settings.smoke,
      roundSeconds: settings.roundSeconds,
      rounds: settings.rounds,
      connections: settings.connections,
    },
    machine: {
      cpus: processors.length,
      model: processors[0]?.model.trim() ?? "unknown",
      node: process.version,
      pinning: "none: every process may run on any CPU",
      stewardHeap: STEWARD_HEAP.described,
      stewardAllocator: Object.entries(STEWARD_ALLOCATOR)
        .map(([name, value]) => `${name}=${value}`)
        .join(" "),
    },
    tables: [],
    targets: [],
    figures: {},
  };
}

const fixed = (value: number | string) =>
  typeof value === "number" ? (Number.isInteger(value) ? String(value) : value.toFixed(2)) : value;

export function renderTable(table: Table): string {
  const lines = [`| ${table.columns.join(" | ")} |`, `|${table.columns.map(() => "---").join("|")}|`];
  for (const row of table.rows) lines.push(`| ${row.map(fixed).join(" | ")} |`);
  return `### ${table.title}\n\n${lines.join("\n")}\n`;
}

export function renderReport(report: BenchReport): string {
  const { settings, machine } = report;
  const header = [
    `Steward bench, ${report.startedAt}${settings.smoke ? " (smoke run: too short for figures)" : ""}`,
    `${machine.cpus} × ${machine.model}, Node ${machine.node}; CPU pinning: ${machine.pinning}`,
    `Steward's V8 heap: ${machine.stewardHeap}; allocator, as npm start sets it: ${machine.stewardAllocator}`,
    `${settings.rounds} round(s) of ${settings.roundSeconds} s per contender, alternated; medians over rounds`,
  ].join("\n");
  const targets: Table = {
    title: "Targets",
    columns: ["target", "measured", "met"],
    rows: report.targets.map((check) => [check.target, check.measured, check.met ? "yes" : "NO"]),
  };
  return [header, ...report.tables.map(renderTable), renderTable(targets)].join("\n\n");
}

export async function writeReport(report: BenchReport, file: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
}

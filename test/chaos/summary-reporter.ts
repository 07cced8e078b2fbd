import type { Reporter, TestModule } from "vitest/node";
import type { ChaosTally } from "./tally.js";

const COLUMNS = ["Fault or input", "Tried", "Handled", "Lost", "Leaked"] as const;

/**
 * Prints, after the chaos suite, one table of every fault and input class the tests
 * tallied: the figures docs/reliability.md keeps.
 */
export default class ChaosSummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const rows: ChaosTally[] = [];
    const untallied: string[] = [];
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const tallies = test.meta().chaos ?? [];
        rows.push(...tallies);
        if (tallies.length === 0 && test.result().state === "failed") untallied.push(test.fullName);
      }
    }
    if (rows.length === 0 && untallied.length === 0) return;
    process.stdout.write(`\nChaos suite summary\n\n${table(rows)}\n`);
    if (rows.some((row) => row.lost === null || row.leaked === null))
      process.stdout.write("– : nothing of that kind is in play for the class\n");
    for (const name of untallied) process.stdout.write(`failed before tallying: ${name}\n`);
  }
}

/** A Markdown table, padded so it also reads in a terminal. */
function table(rows: ChaosTally[]): string {
  const cells = rows.map((row) => [
    row.fault,
    String(row.tried),
    String(row.handled),
    row.lost === null ? "–" : String(row.lost),
    row.leaked === null ? "–" : String(row.leaked),
  ]);
  const widths = COLUMNS.map((title, column) =>
    Math.max(title.length, ...cells.map((line) => line[column]?.length ?? 0)),
  );
  const line = (values: readonly string[]) =>
    `| ${values.map((value, column) => (column === 0 ? value.padEnd(widths[column] ?? 0) : value.padStart(widths[column] ?? 0))).join(" | ")} |`;
  const rule = `|${widths.map((width, column) => (column === 0 ? "-".repeat(width + 2) : `${"-".repeat(width + 1)}:`)).join("|")}|`;
  return [line(COLUMNS), rule, ...cells.map(line)].join("\n");
}

/**
 * `npm run bench`: Steward measured the way its users would compare it, against the agent
 * called directly and a bare undici proxy in the same run. See docs/performance.md.
 */
import { startScript } from "./child.js";
import { newReport, renderReport, writeReport } from "./report.js";
import { reportDelivery, reportExecutor, reportMemory } from "./scenarios/async-report.js";
import { runDelivery } from "./scenarios/delivery.js";
import { runExecutor } from "./scenarios/executor.js";
import { runInvoke } from "./scenarios/invoke.js";
import { reportInvoke } from "./scenarios/invoke-report.js";
import { runPrimitives } from "./scenarios/primitives.js";
import { reportPrimitives } from "./scenarios/primitives-report.js";
import { benchSettings } from "./settings.js";

const settings = benchSettings(process.argv, process.env);
const report = newReport(settings);
const progress = (step: string) => process.stderr.write(`bench: ${step}\n`);

const agent = await startScript("agent-stand-in", "bench/servers/agent-stand-in.ts");
const proxy = await startScript("bare-proxy", "bench/servers/bare-proxy.ts", { UPSTREAM: agent.url });
try {
  const servers = { agent, proxy };
  progress("invoke on PostgreSQL + Redis");
  const postgres = await runInvoke(settings, servers, "postgres", { direct: true, addedLatency: true });
  reportInvoke(
    report,
    postgres,
    `Invoke, ${settings.connections} connections, 300-byte JSON (PostgreSQL + Redis)`,
  );
  progress("invoke on the embedded default");
  const embedded = await runInvoke(settings, servers, "embedded", { direct: false, addedLatency: false });
  reportInvoke(report, embedded, "Invoke on the embedded default (PGlite, in-memory limits)");
  progress("delivery");
  const delivery = await runDelivery(settings, agent.url);
  reportDelivery(report, delivery);
  progress("executor");
  const executor = await runExecutor(settings);
  reportExecutor(report, executor);
  reportMemory(report, {
    invoke: postgres.peakRssMb,
    embedded: embedded.peakRssMb,
    delivery: delivery.peakRssMb,
    executor: executor.peakRssMb,
  });
} finally {
  await proxy.stop();
  await agent.stop();
}
progress("governance primitives");
reportPrimitives(report, await runPrimitives(settings));

process.stdout.write(`${renderReport(report)}\n`);
await writeReport(report, settings.outFile);
process.stdout.write(`\nFigures written to ${settings.outFile}\n`);

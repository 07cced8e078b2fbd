import type { BenchProcess } from "../child.js";
import { sequentialLatency, type Target, type ThroughputRound, throughputRound } from "../load.js";
import type { BenchSettings } from "../settings.js";
import { median } from "../stats.js";
import { createGovernedAgent, type StewardMode, settledInvocations, startSteward } from "../steward.js";

export interface Contender {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  cpuMsPerRequest: number;
  rounds: ThroughputRound[];
}

export interface InvokeFigures {
  mode: StewardMode;
  contenders: Record<string, Contender>;
  /** Median over rounds of Steward's requests/s over the bare proxy's in the same round. */
  stewardOverProxy: number;
  /** One connection, sequential calls: Steward minus the bare proxy. */
  addedLatency?: { p50Ms: number; p99Ms: number; proxyP50Ms: number; stewardP50Ms: number };
  /**
   * Every 2xx must have its record, and nothing is recorded that was not sent:
   * okResponses ≤ recordedInvocations ≤ sentRequests (requests cut off unanswered at the
   * end of a round still run to completion and are recorded).
   */
  okResponses: number;
  sentRequests: number;
  recordedInvocations: number;
  peakRssMb: number;
}

export interface Servers {
  agent: BenchProcess;
  proxy: BenchProcess;
}

/**
 * The invoke comparison: direct to the agent (PostgreSQL mode only), through the bare
 * proxy, and through Steward's governed invoke, in alternating rounds of equal length.
 */
export async function runInvoke(
  settings: BenchSettings,
  servers: Servers,
  mode: StewardMode,
  options: { direct: boolean; addedLatency: boolean },
): Promise<InvokeFigures> {
  const steward = await startSteward(settings, mode, `steward-invoke-${mode}`);
  try {
    const agentId = await createGovernedAgent(steward, servers.agent.url);
    const targets: Record<string, Target> = {
      ...(options.direct ? { direct: { url: `${servers.agent.url}/invoke`, server: servers.agent } } : {}),
      proxy: { url: `${servers.proxy.url}/invoke`, server: servers.proxy },
      steward: {
        url: `${steward.process.url}/api/v1/external-agents/${agentId}/invoke`,
        headers: { authorization: `Bearer ${steward.adminKey}` },
        server: steward.process,
      },
    };
    // A short first round each warms the JIT, connection pools and caches; it is not counted.
    for (const target of Object.values(targets)) await throughputRound(target, settings.connections, 1);
    const warmup = await settledInvocations(steward, agentId);

    const rounds: Record<string, ThroughputRound[]> = Object.fromEntries(
      Object.keys(targets).map((name) => [name, []]),
    );
    for (let round = 0; round < settings.rounds; round++) {
      for (const [name, target] of Object.entries(targets)) {
        const result = await throughputRound(target, settings.connections, settings.roundSeconds);
        rounds[name]?.push(result);
      }
    }
    const recordedInvocations = (await settledInvocations(steward, agentId)) - warmup;

    let addedLatency: InvokeFigures["addedLatency"];
    if (options.addedLatency) {
      const proxy = [];
      const governed = [];
      for (let round = 0; round < settings.rounds; round++) {
        proxy.push(await sequentialLatency(targets.proxy as Target, settings.roundSeconds / 2));
        governed.push(await sequentialLatency(targets.steward as Target, settings.roundSeconds / 2));
      }
      const proxyP50 = median(proxy.map((sample) => sample.p50Ms));
      const stewardP50 = median(governed.map((sample) => sample.p50Ms));
      addedLatency = {
        p50Ms: stewardP50 - proxyP50,
        p99Ms: median(governed.map((sample) => sample.p99Ms)) - median(proxy.map((sample) => sample.p99Ms)),
        proxyP50Ms: proxyP50,
        stewardP50Ms: stewardP50,
      };
      const latencyErrors = [...proxy, ...governed].reduce((sum, sample) => sum + sample.errors, 0);
      if (latencyErrors > 0) throw new Error(`${latencyErrors} failed calls in the latency runs`);
    }

    const stewardRounds = rounds.steward as ThroughputRound[];
    const proxyRounds = rounds.proxy as ThroughputRound[];
    return {
      mode,
      contenders: Object.fromEntries(
        Object.entries(rounds).map(([name, results]) => [name, summarise(results)]),
      ),
      stewardOverProxy: median(
        stewardRounds.map(
          (result, round) =>
            result.requestsPerSecond / (proxyRounds[round] as ThroughputRound).requestsPerSecond,
        ),
      ),
      addedLatency,
      okResponses: stewardRounds.reduce((sum, result) => sum + result.ok, 0),
      sentRequests: stewardRounds.reduce((sum, result) => sum + result.sent, 0),
      recordedInvocations,
      peakRssMb: steward.process.peakRssMb(),
    };
  } finally {
    await steward.stop();
  }
}

function summarise(rounds: ThroughputRound[]): Contender {
  return {
    requestsPerSecond: median(rounds.map((round) => round.requestsPerSecond)),
    p50Ms: median(rounds.map((round) => round.p50Ms)),
    p99Ms: median(rounds.map((round) => round.p99Ms)),
    errors: rounds.reduce((sum, round) => sum + round.errors, 0),
    cpuMsPerRequest: median(rounds.map((round) => round.cpuMsPerRequest)),
    rounds,
  };
}

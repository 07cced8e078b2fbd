/** What one `npm run bench` measures and for how long: the full run, or the short smoke run CI makes. */
export interface BenchSettings {
  smoke: boolean;
  /** Seconds each load round lasts. */
  roundSeconds: number;
  /** Rounds of each contender, alternated so drift on a shared machine hits all of them alike. */
  rounds: number;
  /** Concurrent connections of the throughput runs. */
  connections: number;
  /** Rate-limit decisions of each in-process measurement. */
  primitiveOperations: number;
  /** Budget reservations (each then settled) of each in-process measurement. */
  budgetOperations: number;
  /** Outbox rows the delivery run drains. */
  deliveries: number;
  /** Jobs the executor run publishes. */
  jobs: number;
  databaseUrl: string;
  redisUrl: string;
  natsUrl: string;
  /** Where the figures are written. */
  outFile: string;
}

export function benchSettings(argv: readonly string[], env: NodeJS.ProcessEnv): BenchSettings {
  const smoke = argv.includes("--smoke") || env.BENCH_SMOKE === "1";
  const services = {
    databaseUrl: env.STEWARD_BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test",
    redisUrl: env.STEWARD_BENCH_REDIS_URL ?? "redis://127.0.0.1:6379",
    natsUrl: env.STEWARD_BENCH_NATS_URL ?? "nats://127.0.0.1:4222",
  };
  if (smoke) {
    return {
      smoke,
      roundSeconds: 1,
      rounds: 1,
      connections: 10,
      primitiveOperations: 2_000,
      budgetOperations: 200,
      deliveries: 200,
      jobs: 50,
      ...services,
      outFile: new URL("results/smoke.json", import.meta.url).pathname,
    };
  }
  return {
    smoke,
    roundSeconds: Number(env.BENCH_ROUND_SECONDS ?? 10),
    rounds: Number(env.BENCH_ROUNDS ?? 2),
    connections: 50,
    primitiveOperations: 200_000,
    budgetOperations: 20_000,
    deliveries: 20_000,
    jobs: 5_000,
    ...services,
    outFile: new URL("results/latest.json", import.meta.url).pathname,
  };
}

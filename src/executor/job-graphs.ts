import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import { isConcurrentCreation } from "../db/errors.js";
import type { CompiledJobGraph, NodeRunners } from "./graph-compiler.js";
import type { GraphDefinition } from "./graph-definition.js";

type Compile = (definition: GraphDefinition) => CompiledJobGraph;

/**
 * Processes running their first jobs at the same moment on a new database race to make
 * the checkpoint tables. A statement of one of them always wins, and that process goes
 * on; the others wait a moment, long enough for it to finish, and find the tables made.
 */
const TABLE_SETUP_ATTEMPTS = 5;
const TABLE_SETUP_PAUSE_MS = 50;

/**
 * Compiles job graphs with LangGraph and Steward's PostgreSQL checkpointer, both loaded
 * the first time a job needs them (or when `prepare` asks) — which is also when the
 * checkpoint tables are created. Together they take about 20 MB of heap (a quarter of an idle process's) that
 * a process running no job (an API replica beside its workers, the embedded default used
 * only for invokes) would otherwise carry for nothing.
 */
export class JobGraphs {
  private loaded?: Promise<Compile>;

  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
    private readonly runners: NodeRunners,
  ) {}

  async compile(definition: GraphDefinition): Promise<CompiledJobGraph> {
    return (await this.compiler())(definition);
  }

  /** Loads them, and makes the tables, now rather than with the first job. */
  async prepare(): Promise<void> {
    await this.compiler();
  }

  private compiler(): Promise<Compile> {
    // A failed load (the database down while the tables were being created) is tried again by the next job.
    this.loaded ??= this.load().catch((error: unknown) => {
      this.loaded = undefined;
      throw error;
    });
    return this.loaded;
  }

  private async load(): Promise<Compile> {
    const [{ compileGraph }, { BatchedPostgresSaver }] = await Promise.all([
      import("./graph-compiler.js"),
      import("./checkpoint-saver.js"),
    ]);
    const checkpointer = new BatchedPostgresSaver(this.pool, this.schema);
    for (let attempt = 1; ; attempt++) {
      try {
        await checkpointer.setup();
        break;
      } catch (error) {
        if (attempt === TABLE_SETUP_ATTEMPTS || !isConcurrentCreation(error)) throw error;
        // Spread out, so the losers of one collision do not collide again with each other.
        await sleep(TABLE_SETUP_PAUSE_MS * attempt * (1 + Math.random()));
      }
    }
    return (definition) => compileGraph(definition, this.runners, checkpointer);
  }
}

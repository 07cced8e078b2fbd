import type pg from "pg";
import type { CompiledJobGraph, NodeRunners } from "./graph-compiler.js";
import type { GraphDefinition } from "./graph-definition.js";

type Compile = (definition: GraphDefinition) => CompiledJobGraph;

/**
 * Compiles job graphs with LangGraph and Steward's PostgreSQL checkpointer, both loaded
 * the first time a job needs them — which is also when the checkpoint tables are
 * created. Together they take about 20 MB of heap (a quarter of an idle process's) that
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
    // A failed load (the database down while the tables were being created) is tried again by the next job.
    this.loaded ??= this.load().catch((error: unknown) => {
      this.loaded = undefined;
      throw error;
    });
    return (await this.loaded)(definition);
  }

  private async load(): Promise<Compile> {
    const [{ compileGraph }, { BatchedPostgresSaver }] = await Promise.all([
      import("./graph-compiler.js"),
      import("./checkpoint-saver.js"),
    ]);
    const checkpointer = new BatchedPostgresSaver(this.pool, this.schema);
    await checkpointer.setup();
    return (definition) => compileGraph(definition, this.runners, checkpointer);
  }
}

import {
  Annotation,
  END,
  GraphRecursionError,
  type LangGraphRunnableConfig,
  StateGraph,
} from "@langchain/langgraph";
import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import jsonata from "jsonata";
import {
  type ExternalAgentNode,
  type GraphDefinition,
  GraphLimitError,
  type GraphNode,
  graphLimits,
  type HttpNode,
  type LlmNode,
  START_NODE,
} from "./graph-definition.js";
import { evaluateExpression, type GraphState, toJson } from "./graph-expression.js";
import { runLangChainWithoutRootRunTrees } from "./langchain-context.js";

runLangChainWithoutRootRunTrees();

export interface NodeContext {
  jobId: string;
  nodeId: string;
  /**
   * The LangGraph step this run of the node belongs to: a node a loop visits again runs at
   * another step, and a node run again on resume from its checkpoint runs at the same one.
   */
  step: number;
  organizationId: string;
  traceId: string;
  /** Streams an event to the job's watchers (tokens, calls, …). */
  emit(eventType: string, data: Record<string, unknown>): void;
  signal: AbortSignal;
}

/** How non-transform nodes reach the outside world; the lead implements them (governed gateway, SSRF-safe HTTP, LLM client). */
export interface NodeRunners {
  http(node: HttpNode, state: GraphState, ctx: NodeContext): Promise<unknown>;
  llm(node: LlmNode, state: GraphState, ctx: NodeContext): Promise<unknown>;
  external_agent(node: ExternalAgentNode, state: GraphState, ctx: NodeContext): Promise<unknown>;
}

export interface GraphRun {
  result: unknown;
  /** Nodes run over the job's whole life, resumed runs included. */
  steps: number;
  resumed: boolean;
}

export interface JobGraphRun {
  jobId: string;
  organizationId: string;
  traceId: string;
  input: unknown;
  /** The job never ran before: there is no checkpoint to look for. */
  firstAttempt?: boolean;
  emit: NodeContext["emit"];
  signal?: AbortSignal;
}

export interface CompiledJobGraph {
  /**
   * Runs the job, or resumes it from its last checkpoint when one exists for jobId: completed
   * nodes are not run again. Emits node_start / node_end {node, output} for every node run.
   * Throws GraphNodeError on node failure, GraphLimitError on limits.max_steps and
   * limits.timeout_seconds, and the signal's reason when `signal` aborts.
   */
  run(job: JobGraphRun): Promise<GraphRun>;
  /** The latest checkpointed state of a job (undefined when none). */
  state(jobId: string): Promise<{ values: GraphState } | undefined>;
}

/** A checkpointer told that a thread is new skips looking it up (see BatchedPostgresSaver). */
interface NewThreadHint {
  expectNew(threadId: string): () => void;
}

/** A node, or the condition of an edge leaving it, failed; `cause` is what was thrown. */
export class GraphNodeError extends Error {
  override name = "GraphNodeError";
  constructor(
    readonly node: string,
    cause: unknown,
    what = "",
  ) {
    super(`node "${node}" failed${what}: ${messageOf(cause)}`, { cause });
  }
}

/** Edge conditions hold when their value is truthy as JSONata sees it. */
const TRUTHY = jsonata("$boolean($value)");

/**
 * The state lives in one channel as JSON text, not as an object: LangGraph's checkpoint
 * serializer revives objects shaped like `{"lc": 1, "type": "constructor", …}` into
 * LangChain classes, and state here holds whatever HTTP, LLMs and callers returned. Text
 * comes back from a checkpoint exactly as it went in.
 */
const JobState = Annotation.Root({
  $state: Annotation<string, GraphState>({
    reducer: (current, update) => JSON.stringify({ ...parseState(current), ...update }),
    default: () => "{}",
  }),
  /** The id of the node that ran last; its output is the job's result. */
  $last: Annotation<string>(),
});
type JobStateValues = typeof JobState.State;

/** Compiles to a LangGraph StateGraph with the given checkpointer (thread_id = job id). */
export function compileGraph(
  definition: GraphDefinition,
  runners: NodeRunners,
  checkpointer: BaseCheckpointSaver,
): CompiledJobGraph {
  const limits = graphLimits(definition);
  const threadOf = (jobId: string) => ({ configurable: { thread_id: jobId } });

  return {
    async run(job) {
      const saved = job.firstAttempt ? undefined : await checkpointer.getTuple(threadOf(job.jobId));
      const timeout = AbortSignal.timeout(limits.timeout_seconds * 1000);
      const signal = job.signal ? AbortSignal.any([job.signal, timeout]) : timeout;
      const progress = { step: 0 };
      // Node functions close over the job, so a graph is built per run (cheap) rather than
      // passing the job through LangGraph's config, which checkpoints may record.
      const graph = buildGraph(definition, runners, limits.max_steps, { ...job, signal }, progress).compile({
        checkpointer,
      });
      if (saved) {
        const snapshot = await graph.getState(threadOf(job.jobId));
        // Finished earlier (the process died before recording the result): nothing to run.
        if (snapshot.next.length === 0) {
          const values = snapshot.values as Partial<JobStateValues>;
          const step = Number(snapshot.metadata?.step ?? 0);
          return { result: resultOf(values), steps: Math.max(step, 0), resumed: true };
        }
      }
      let values: JobStateValues;
      // LangGraph looks for the thread's latest checkpoint too: on a first attempt it need not ask.
      const forgetNew = job.firstAttempt
        ? (checkpointer as Partial<NewThreadHint>).expectNew?.(job.jobId)
        : undefined;
      try {
        // `null` continues the thread from its checkpoint, re-running only unfinished nodes.
        values = await graph.invoke(saved ? null : { $state: { input: toJson(job.input) } }, {
          ...threadOf(job.jobId),
          // The node guard enforces max_steps exactly; LangGraph's limit counts from the
          // checkpoint it resumes and fails one step early, hence the extra step.
          recursionLimit: limits.max_steps + 1,
          signal,
          // Each node's checkpoint is written before the next node starts, so a crash
          // never re-runs a node that had finished.
          durability: "sync",
        });
      } catch (error) {
        throw runError(error, job.signal, timeout, limits);
      } finally {
        forgetNew?.();
      }
      return { result: resultOf(values), steps: progress.step, resumed: saved !== undefined };
    },

    async state(jobId) {
      const saved = await checkpointer.getTuple(threadOf(jobId));
      if (!saved) return undefined;
      const text = saved.checkpoint.channel_values.$state;
      return { values: typeof text === "string" ? parseState(text) : {} };
    },
  };
}

function buildGraph(
  definition: GraphDefinition,
  runners: NodeRunners,
  maxSteps: number,
  job: JobGraphRun & { signal: AbortSignal },
  /** The LangGraph step of the last node started: nodes run one per step. */
  progress: { step: number },
) {
  const graph = new StateGraph(JobState).addNode(
    definition.nodes.map((node) => {
      const action = async (values: JobStateValues, config: LangGraphRunnableConfig) => {
        const step = Number(config.metadata?.langgraph_step ?? 0);
        progress.step = step;
        // Checked here rather than left to recursionLimit, which restarts its count on resume.
        if (step > maxSteps)
          throw new GraphLimitError(
            "max_steps",
            `the graph ran more than ${maxSteps} steps (limits.max_steps)`,
          );
        const ctx: NodeContext = {
          jobId: job.jobId,
          nodeId: node.id,
          step,
          organizationId: job.organizationId,
          traceId: job.traceId,
          emit: job.emit,
          signal: job.signal,
        };
        job.emit("node_start", { node: node.id });
        let output: unknown;
        try {
          output = toJson(await runNode(node, parseState(values.$state), runners, ctx));
        } catch (error) {
          throw new GraphNodeError(node.id, error);
        }
        job.emit("node_end", { node: node.id, output });
        return { $state: { [node.id]: output }, $last: node.id };
      };
      return [node.id, action] as [string, typeof action];
    }),
  );

  const sources = [START_NODE, ...definition.nodes.map((node) => node.id)];
  for (const source of sources) {
    const edges = definition.edges.filter((edge) => edge.from === source);
    const conditional = edges.filter((edge) => edge.when !== undefined);
    const fallback = edges.find((edge) => edge.when === undefined)?.to ?? END;
    // Without conditions a plain edge does (to END too): a router would cost every run a step's work.
    if (conditional.length === 0) {
      graph.addEdge(source, fallback);
      continue;
    }
    const route = async (values: JobStateValues): Promise<string> => {
      const state = parseState(values.$state);
      for (const edge of conditional) {
        // The first edge (in definition order) whose condition holds, by JSONata's $boolean.
        try {
          const value = await evaluateExpression(edge.when as string, state);
          if (await TRUTHY.evaluate(null, { value })) return edge.to;
        } catch (error) {
          throw new GraphNodeError(source, error, ` choosing its edge to "${edge.to}"`);
        }
      }
      return fallback;
    };
    graph.addConditionalEdges(source, route, [...new Set([...edges.map((edge) => edge.to), END])]);
  }
  return graph;
}

function runNode(
  node: GraphNode,
  state: GraphState,
  runners: NodeRunners,
  ctx: NodeContext,
): Promise<unknown> {
  switch (node.type) {
    case "transform":
      return evaluateExpression(node.expression, state);
    case "http":
      return runners.http(node, state, ctx);
    case "llm":
      return runners.llm(node, state, ctx);
    case "external_agent":
      return runners.external_agent(node, state, ctx);
  }
}

/** What a failed invoke means for the job. */
function runError(
  error: unknown,
  jobSignal: AbortSignal | undefined,
  timeout: AbortSignal,
  limits: { max_steps: number; timeout_seconds: number },
): unknown {
  // Signals first: an aborted node rejects with whatever its runner makes of the abort.
  if (jobSignal?.aborted) return jobSignal.reason;
  if (timeout.aborted)
    return new GraphLimitError(
      "timeout_seconds",
      `the run took longer than ${limits.timeout_seconds} s (limits.timeout_seconds)`,
    );
  if (error instanceof GraphRecursionError)
    return new GraphLimitError(
      "max_steps",
      `the graph ran more than ${limits.max_steps} steps (limits.max_steps)`,
    );
  // GraphNodeError and GraphLimitError from the nodes; anything else (the checkpointer's
  // database, say) is Steward's own trouble and goes up as it is.
  return error;
}

function resultOf(values: Partial<JobStateValues>): unknown {
  const state = parseState(values.$state ?? "{}");
  return values.$last !== undefined && Object.hasOwn(state, values.$last) ? state[values.$last] : null;
}

function parseState(text: string): GraphState {
  return JSON.parse(text) as GraphState;
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === "string" ? message : String(error);
}

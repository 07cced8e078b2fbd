import type { Api, Page } from "../../api/client";
import type { LineageGraph, LineageRecord } from "./lineage-types";

/** A trace is a handful of calls; one page of the largest size holds it. */
const PAGE_LIMIT = 100;

export interface Trace {
  record: LineageRecord;
  graph: LineageGraph;
  /** The trace's records, oldest first (at most PAGE_LIMIT). */
  records: LineageRecord[];
  /** How many calls the graph counts: more than `records` holds for a trace beyond one page. */
  calls: number;
}

async function recordsOf(api: Api, traceId: string): Promise<LineageRecord[]> {
  const page = await api.get<Page<LineageRecord>>("/lineage", { trace_id: traceId, limit: PAGE_LIMIT });
  return [...page.items].sort((a, b) => a.invocation_id.localeCompare(b.invocation_id));
}

/** Every call reaches exactly one agent, so the edges into agents count the trace's calls. */
function callsIn(graph: LineageGraph): number {
  return graph.edges
    .filter((edge) => edge.to.startsWith("agent:"))
    .reduce((total, edge) => total + edge.invocations, 0);
}

/** The record, its trace's graph and the trace's records. */
export async function loadTrace(api: Api, invocationId: string): Promise<Trace> {
  const record = await api.get<LineageRecord>(`/lineage/${invocationId}`);
  const graph = await api.get<LineageGraph>("/lineage/graph", { trace_id: record.trace.trace_id });
  return { record, graph, records: await recordsOf(api, record.trace.trace_id), calls: callsIn(graph) };
}

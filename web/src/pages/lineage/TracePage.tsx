import { Link, useParams } from "react-router";
import { useLoader } from "../../api/hooks";
import { ResourceView } from "../../components/States";
import { StatusBadge } from "../../components/StatusBadge";
import { LineageTable } from "./LineageTable";
import { externalUserOf, formatCost, formatDuration, formatTime } from "./lineage-format";
import type { LineageRecord } from "./lineage-types";
import { TraceGraph } from "./TraceGraph";
import { loadTrace, type Trace } from "./trace-records";
import "./lineage.css";

function RecordFacts({ record }: { record: LineageRecord }) {
  return (
    <dl className="facts panel">
      <dt>Invocation</dt>
      <dd className="lineage-mono">{record.invocation_id}</dd>
      <dt>Status</dt>
      <dd>
        <StatusBadge status={record.status} />
      </dd>
      <dt>Trace</dt>
      <dd className="lineage-mono">{record.trace.trace_id}</dd>
      <dt>Started</dt>
      <dd>{formatTime(record.created_at)}</dd>
      <dt>External user</dt>
      <dd>{externalUserOf(record)}</dd>
      <dt>Agent</dt>
      <dd>
        {record.agent.name} (version {record.agent.version})
      </dd>
      <dt>Duration and cost</dt>
      <dd>
        {formatDuration(record.duration_ms)} · {formatCost(record.cost_usd)}
      </dd>
      {record.error && (
        <>
          <dt>Error</dt>
          <dd>{record.error}</dd>
        </>
      )}
    </dl>
  );
}

function TraceView({ trace }: { trace: Trace }) {
  return (
    <>
      <RecordFacts record={trace.record} />
      <section aria-labelledby="graph-heading">
        <h2 id="graph-heading">Call graph</h2>
        <div className="panel">
          <TraceGraph graph={trace.graph} />
        </div>
      </section>
      <section aria-labelledby="trace-records-heading">
        <h2 id="trace-records-heading">Records in this trace</h2>
        {trace.records.length < trace.calls && (
          <p className="trace-note">
            Showing the first {trace.records.length} of the {trace.calls} calls in this trace.
          </p>
        )}
        <LineageTable
          records={trace.records}
          caption="Records in this trace, oldest first"
          current={trace.record.invocation_id}
        />
      </section>
    </>
  );
}

/** One invocation's trace: the call graph, then the trace's records. */
export function TracePage() {
  const { invocationId = "" } = useParams();
  const trace = useLoader((api) => loadTrace(api, invocationId), [invocationId]);
  return (
    <section className="trace">
      <p className="trace-back">
        <Link to="/lineage">← All records</Link>
      </p>
      <h1>Trace of {invocationId}</h1>
      <ResourceView resource={trace}>{(data) => <TraceView trace={data} />}</ResourceView>
    </section>
  );
}

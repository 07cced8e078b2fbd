import { Link } from "react-router";
import { StatusBadge } from "../../components/StatusBadge";
import { externalUserOf, formatCost, formatDuration, formatTime } from "./lineage-format";
import type { LineageRecord } from "./lineage-types";

/** Records, one row each, linking to the trace each belongs to. */
export function LineageTable({
  records,
  caption,
  current,
}: {
  records: LineageRecord[];
  caption: string;
  /** The record a trace page is about, marked in its table. */
  current?: string;
}) {
  return (
    <div className="table-wrap">
      <table className="lineage-table">
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Started</th>
            <th scope="col">Status</th>
            <th scope="col">External user</th>
            <th scope="col">System</th>
            <th scope="col">Agent</th>
            <th scope="col">Duration</th>
            <th scope="col">Cost</th>
            <th scope="col">Invocation</th>
          </tr>
        </thead>
        <tbody>
          {records.map((record) => (
            <tr
              key={record.invocation_id}
              aria-current={record.invocation_id === current ? "true" : undefined}
              className={record.invocation_id === current ? "lineage-current" : undefined}
            >
              <td>{formatTime(record.created_at)}</td>
              <td>
                <StatusBadge status={record.status} />
              </td>
              <td>{externalUserOf(record)}</td>
              <td>{record.external_system.system ?? "—"}</td>
              <td>{record.agent.name}</td>
              <td className="lineage-num">{formatDuration(record.duration_ms)}</td>
              <td className="lineage-num">{formatCost(record.cost_usd)}</td>
              <td>
                <Link to={`/lineage/${record.invocation_id}`} className="lineage-mono">
                  {record.invocation_id}
                </Link>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

import { DateTime } from "../../components/DateTime";
import { StatusBadge } from "../../components/StatusBadge";
import type { Decision } from "./approval-types";
import { DECISION_OUTCOMES } from "./DecidedBy";

/** Each approver's decision on a request, in order. */
export function DecisionsTable({ decisions }: { decisions: Decision[] }) {
  return (
    <div className="table-wrap">
      <table>
        <caption className="visually-hidden">Decisions so far</caption>
        <thead>
          <tr>
            <th scope="col">Approver</th>
            <th scope="col">Decision</th>
            <th scope="col">Reason</th>
            <th scope="col">When</th>
          </tr>
        </thead>
        <tbody>
          {decisions.map((decision) => (
            <tr key={`${decision.approver_id}-${decision.created_at}`}>
              <td>
                <code>{decision.approver_id}</code>
              </td>
              <td>
                <StatusBadge status={DECISION_OUTCOMES[decision.decision] ?? decision.decision} />
              </td>
              <td>{decision.reason ?? "—"}</td>
              <td>
                <DateTime value={decision.created_at} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

import { useState } from "react";
import { Link } from "react-router";
import type { Page } from "../../api/client";
import { useLoader } from "../../api/hooks";
import { DateTime } from "../../components/DateTime";
import { Pagination } from "../../components/Pagination";
import { SelectFilter } from "../../components/SelectFilter";
import { ResourceView } from "../../components/States";
import { StatusBadge } from "../../components/StatusBadge";
import type { Approval, ApprovalDetail } from "./approval-types";
import { DecidedBy } from "./DecidedBy";
import { useAgentNames } from "./useAgentNames";

const PAGE_SIZE = 10;
const OUTCOMES = [
  { value: "approved", label: "Approved" },
  { value: "rejected", label: "Rejected" },
  { value: "expired", label: "Expired" },
  { value: "", label: "All requests" },
];

/**
 * Decided requests with who decided, when and why. The list does not carry the
 * decisions, so each row's request is read too (a page is at most ten).
 */
export function ApprovalHistory({ version }: { version: number }) {
  const [status, setStatus] = useState("approved");
  const [page, setPage] = useState(1);
  const history = useLoader(
    async (api) => {
      const list = await api.get<Page<Approval>>("/approvals", { status, page, limit: PAGE_SIZE });
      const items = await Promise.all(
        list.items.map((item) => api.get<ApprovalDetail>(`/approvals/${item.id}`)),
      );
      return { ...list, items };
    },
    [status, page, version],
  );
  const names = useAgentNames(history.data?.items.map((item) => item.external_agent_id) ?? []);

  return (
    <section aria-labelledby="history-heading">
      <h2 id="history-heading">History</h2>
      <div className="toolbar">
        <SelectFilter
          label="Outcome"
          options={OUTCOMES}
          value={status}
          onChange={(value) => {
            setStatus(value);
            setPage(1);
          }}
        />
      </div>
      <ResourceView
        resource={history}
        isEmpty={(data) => data.total === 0}
        empty="No requests with this outcome."
      >
        {(data) => (
          <>
            <div className="table-wrap approval-history">
              <table>
                <caption className="visually-hidden">Approval history</caption>
                <thead>
                  <tr>
                    <th scope="col">Requested</th>
                    <th scope="col">Agent</th>
                    <th scope="col">Outcome</th>
                    <th scope="col">Decided by</th>
                    <th scope="col">Decided</th>
                    <th scope="col">Reason</th>
                  </tr>
                </thead>
                <tbody>
                  {data.items.map((approval) => (
                    <tr key={approval.id}>
                      <td>
                        <Link to={`/approvals/${approval.id}`}>
                          <DateTime value={approval.created_at} />
                        </Link>
                      </td>
                      <td>{names[approval.external_agent_id] ?? approval.external_agent_id}</td>
                      <td>
                        <StatusBadge status={approval.status} />
                      </td>
                      <td>
                        <DecidedBy approval={approval} />
                      </td>
                      <td>{approval.decided_at ? <DateTime value={approval.decided_at} /> : "—"}</td>
                      <td>{approval.decision_reason ?? "—"}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pagination page={data} onPage={setPage} label="History" />
          </>
        )}
      </ResourceView>
    </section>
  );
}

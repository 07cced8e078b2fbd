import { useCallback, useState } from "react";
import { Link } from "react-router";
import type { Page } from "../../api/client";
import { useInterval, useLoader } from "../../api/hooks";
import { Pagination } from "../../components/Pagination";
import { ResourceView } from "../../components/States";
import { StatusBadge } from "../../components/StatusBadge";
import type { Invocation } from "./agent-types";
import { formatCost, formatDateTime, formatDuration } from "./format";

const PAGE_SIZE = 10;
/** Rows that change on their own: a call waiting for a person, a result still being delivered. */
const UNSETTLED = new Set(["pending_approval", "pending", "failed"]);

function callerOf(invocation: Invocation): string {
  const user = invocation.external_user.email ?? invocation.external_user.id;
  if (user) return user;
  const { credential } = invocation;
  return credential.api_key_prefix ? `key ${credential.api_key_prefix}…` : credential.id;
}

/** The agent's recent invocations, newest first; each links to its lineage trace. */
export function InvocationList({ agentId, generation }: { agentId: string; generation: number }) {
  const [page, setPage] = useState(1);
  const invocations = useLoader<Page<Invocation>>(
    (api) => api.get(`/external-agents/${agentId}/invocations`, { page, limit: PAGE_SIZE }),
    [agentId, page, generation],
  );
  const { reload } = invocations;
  const unsettled =
    invocations.data?.items.some(
      (row) => UNSETTLED.has(row.status) || UNSETTLED.has(row.webhook_delivery_status ?? ""),
    ) ?? false;
  const poll = useCallback(() => {
    if (unsettled) reload();
  }, [unsettled, reload]);
  useInterval(poll, 3000);
  return (
    <section className="panel agent-panel" aria-labelledby="invocations-title">
      <div className="agent-section-head">
        <h2 id="invocations-title">Recent invocations</h2>
        <button type="button" className="secondary" onClick={reload} aria-label="Refresh invocations">
          Refresh
        </button>
      </div>
      <ResourceView
        resource={invocations}
        isEmpty={(data) => data.total === 0}
        empty="No invocations yet. Invoke the agent above to see one here."
      >
        {(data) => (
          <>
            <div className="table-wrap">
              <table>
                <caption className="visually-hidden">Invocations</caption>
                <thead>
                  <tr>
                    <th scope="col">Invocation</th>
                    <th scope="col">Status</th>
                    <th scope="col">Started</th>
                    <th scope="col">Duration</th>
                    <th scope="col">Cost</th>
                    <th scope="col">Caller</th>
                    <th scope="col">Delivery</th>
                  </tr>
                </thead>
                <tbody>
                  {data.items.map((invocation) => (
                    <tr key={invocation.invocation_id}>
                      <td>
                        <Link
                          to={`/lineage/${invocation.invocation_id}`}
                          aria-label={`Trace of ${invocation.invocation_id}`}
                        >
                          <code>{invocation.invocation_id}</code>
                        </Link>
                      </td>
                      <td>
                        <StatusBadge status={invocation.status} />
                        {invocation.error && <div className="agent-muted">{invocation.error}</div>}
                      </td>
                      <td className="agent-nowrap">{formatDateTime(invocation.created_at)}</td>
                      <td>{formatDuration(invocation.duration_ms)}</td>
                      <td>{formatCost(invocation.cost_usd)}</td>
                      <td>{callerOf(invocation)}</td>
                      <td>
                        {invocation.webhook_delivery_status ? (
                          <StatusBadge status={invocation.webhook_delivery_status} />
                        ) : (
                          "—"
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pagination page={data} label="Invocations" onPage={setPage} />
          </>
        )}
      </ResourceView>
    </section>
  );
}

import { useState } from "react";
import type { Page } from "../../api/client";
import { useLoader } from "../../api/hooks";
import { Pagination } from "../../components/Pagination";
import { ResourceView } from "../../components/States";
import { StatusBadge } from "../../components/StatusBadge";
import { formatTime } from "./clock";
import type { Transition } from "./managed-agent.types";

const PAGE_SIZE = 20;

/**
 * Every state change of the agent, oldest first as the API lists them, opening on the
 * last page so the latest change shows. `revision` reloads it (a status event).
 */
export function StatusHistory({ agentId, revision }: { agentId: string; revision: number }) {
  // Undefined: the last page, whichever that is by now.
  const [page, setPage] = useState<number>();
  const history = useLoader(
    async (api) => {
      const path = `/agents/${encodeURIComponent(agentId)}/status/history`;
      const first = await api.get<Page<Transition>>(path, { page: page ?? 1, limit: PAGE_SIZE });
      const last = Math.max(1, Math.ceil(first.total / PAGE_SIZE));
      return page === undefined && last > 1
        ? api.get<Page<Transition>>(path, { page: last, limit: PAGE_SIZE })
        : first;
    },
    [agentId, page, revision],
  );
  return (
    <section className="panel" aria-labelledby="status-history-heading">
      <h2 id="status-history-heading" className="managed-panel-title">
        Status history
      </h2>
      <ResourceView resource={history} isEmpty={(data) => data.total === 0} empty="No state changes yet.">
        {(data) => (
          <>
            <div className="table-wrap">
              <table>
                <caption className="visually-hidden">State changes, oldest first</caption>
                <thead>
                  <tr>
                    <th scope="col">When</th>
                    <th scope="col">From</th>
                    <th scope="col">To</th>
                    <th scope="col">Reason</th>
                    <th scope="col">By</th>
                  </tr>
                </thead>
                <tbody>
                  {data.items.map((transition) => (
                    <tr key={transition.id}>
                      <td>
                        <time dateTime={transition.at}>{formatTime(transition.at)}</time>
                      </td>
                      <td>{transition.from ? <StatusBadge status={transition.from} /> : "—"}</td>
                      <td>
                        <StatusBadge status={transition.to} />
                      </td>
                      <td>{transition.reason ?? "—"}</td>
                      <td>
                        {transition.actor.type} {transition.actor.id}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            {data.total > data.limit && <Pagination page={data} label="Status history" onPage={setPage} />}
          </>
        )}
      </ResourceView>
    </section>
  );
}

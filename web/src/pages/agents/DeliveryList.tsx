import { useCallback, useEffect, useState } from "react";
import { Link } from "react-router";
import type { Page } from "../../api/client";
import { useInterval, useLoader } from "../../api/hooks";
import { Pagination } from "../../components/Pagination";
import { ResourceView } from "../../components/States";
import { StatusBadge } from "../../components/StatusBadge";
import type { Delivery } from "./agent-types";
import { formatDateTime } from "./format";

const PAGE_SIZE = 10;
const IN_FLIGHT: ReadonlySet<Delivery["status"]> = new Set(["pending", "delivering", "failed"]);

/** Where the agent's results went: deliveries to its platform, refreshed while any is still on its way. */
export function DeliveryList({ agentId, generation }: { agentId: string; generation: number }) {
  const [page, setPage] = useState(1);
  const deliveries = useLoader<Page<Delivery>>(
    (api) => api.get("/deliveries", { external_agent_id: agentId, page, limit: PAGE_SIZE }),
    [agentId, page, generation],
  );
  const { reload } = deliveries;
  // Right after an invocation its delivery may not exist yet: keep looking a little while too.
  const [watchUntil, setWatchUntil] = useState(0);
  useEffect(() => {
    if (generation > 0) setWatchUntil(Date.now() + 30_000);
  }, [generation]);
  const inFlight = deliveries.data?.items.some((delivery) => IN_FLIGHT.has(delivery.status)) ?? false;
  const poll = useCallback(() => {
    if (inFlight || Date.now() < watchUntil) reload();
  }, [inFlight, watchUntil, reload]);
  useInterval(poll, 3000);

  return (
    <section className="panel agent-panel" aria-labelledby="deliveries-title">
      <div className="agent-section-head">
        <h2 id="deliveries-title">Deliveries</h2>
        <button type="button" className="secondary" onClick={reload} aria-label="Refresh deliveries">
          Refresh
        </button>
      </div>
      <ResourceView
        resource={deliveries}
        isEmpty={(data) => data.total === 0}
        empty="No deliveries yet. Results are delivered to the agent's platform after each call."
      >
        {(data) => (
          <>
            <div className="table-wrap">
              <table>
                <caption className="visually-hidden">Deliveries</caption>
                <thead>
                  <tr>
                    <th scope="col">Delivery</th>
                    <th scope="col">Status</th>
                    <th scope="col">Target</th>
                    <th scope="col">Invocation</th>
                    <th scope="col">Attempts</th>
                    <th scope="col">Last status</th>
                    <th scope="col">Delivered</th>
                  </tr>
                </thead>
                <tbody>
                  {data.items.map((delivery) => (
                    <tr key={delivery.id}>
                      <td>
                        <code>{delivery.id}</code>
                      </td>
                      <td>
                        <StatusBadge status={delivery.status} />
                      </td>
                      <td>{delivery.platform ?? delivery.target}</td>
                      <td>
                        {delivery.invocation_id ? (
                          <Link to={`/lineage/${delivery.invocation_id}`}>
                            <code>{delivery.invocation_id}</code>
                          </Link>
                        ) : (
                          "—"
                        )}
                      </td>
                      <td>{delivery.attempts}</td>
                      <td>
                        {delivery.last_status_code ?? "—"}
                        {delivery.last_error && <div className="agent-muted">{delivery.last_error}</div>}
                      </td>
                      <td className="agent-nowrap">{formatDateTime(delivery.delivered_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pagination page={data} label="Deliveries" onPage={setPage} />
          </>
        )}
      </ResourceView>
    </section>
  );
}

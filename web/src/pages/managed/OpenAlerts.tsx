import type { Page } from "../../api/client";
import { useLoader } from "../../api/hooks";
import { ResourceView } from "../../components/States";
import { formatTime } from "./clock";
import type { AgentAlert } from "./managed-agent.types";

/** The agent's alerts still open (a crash loop, missed heartbeats, a metric rule). */
export function OpenAlerts({ agentId, revision }: { agentId: string; revision: number }) {
  const alerts = useLoader(
    (api) => api.get<Page<AgentAlert>>("/agents/alerts", { agent_id: agentId, open: true, limit: 20 }),
    [agentId, revision],
  );
  return (
    <section className="panel" aria-labelledby="alerts-heading">
      <h2 id="alerts-heading" className="managed-panel-title">
        Open alerts
      </h2>
      <ResourceView resource={alerts} isEmpty={(page) => page.total === 0} empty="No open alerts.">
        {(page) => (
          <ul className="managed-alerts">
            {page.items.map((alert) => (
              <li key={alert.id}>
                <span className="badge badge-bad">{alert.kind.replaceAll("_", " ")}</span> {alert.message}{" "}
                <time dateTime={alert.fired_at}>{formatTime(alert.fired_at)}</time>
              </li>
            ))}
          </ul>
        )}
      </ResourceView>
    </section>
  );
}

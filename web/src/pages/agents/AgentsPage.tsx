import { Link, useSearchParams } from "react-router";
import type { Page } from "../../api/client";
import { useResource } from "../../api/hooks";
import { Pagination } from "../../components/Pagination";
import { ResourceView } from "../../components/States";
import { StatusBadge } from "../../components/StatusBadge";
import { AgentFilters, FILTER_KEYS } from "./AgentFilters";
import { type Agent, PLATFORM_LABELS } from "./agent-types";
import { formatDateTime } from "./format";
import "./agents.css";

const PAGE_SIZE = 20;

/** The organization's external agents, filtered and paged through the URL so a reload keeps the view. */
export function AgentsPage() {
  const [params, setParams] = useSearchParams();
  const page = Math.max(1, Number(params.get("page")) || 1);
  const query = Object.fromEntries(FILTER_KEYS.map((key) => [key, params.get(key) ?? undefined]));
  const agents = useResource<Page<Agent>>("/external-agents", { ...query, page, limit: PAGE_SIZE });
  const filtered = FILTER_KEYS.some((key) => params.get(key));

  const setParam = (key: string, value: string) =>
    setParams(
      (current) => {
        const next = new URLSearchParams(current);
        if (value) next.set(key, value);
        else next.delete(key);
        // Another filter or page size means another list: start it from its first page.
        if (key !== "page") next.delete("page");
        return next;
      },
      { replace: true },
    );

  return (
    <section aria-labelledby="agents-title">
      <div className="agent-head">
        <h1 id="agents-title">Agents</h1>
        <Link className="agent-action-link" to="/register">
          Register an agent
        </Link>
      </div>
      <AgentFilters params={params} onChange={setParam} />
      <ResourceView
        resource={agents}
        isEmpty={(data) => data.total === 0}
        empty={filtered ? "No agent matches these filters." : "No agents yet. Register one to start."}
      >
        {(data) => (
          <>
            <AgentTable agents={data.items} />
            <Pagination page={data} label="Agents" onPage={(next) => setParam("page", String(next))} />
          </>
        )}
      </ResourceView>
    </section>
  );
}

function AgentTable({ agents }: { agents: Agent[] }) {
  return (
    <div className="table-wrap">
      <table>
        <caption className="visually-hidden">Registered agents</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Platform</th>
            <th scope="col">Status</th>
            <th scope="col">Authentication</th>
            <th scope="col">Endpoint</th>
            <th scope="col">Tags</th>
            <th scope="col">Updated</th>
          </tr>
        </thead>
        <tbody>
          {agents.map((agent) => (
            <tr key={agent.id}>
              <td>
                <Link to={`/agents/${agent.id}`}>{agent.name}</Link>
                {agent.description && <div className="agent-muted">{agent.description}</div>}
              </td>
              <td>{PLATFORM_LABELS[agent.platform]}</td>
              <td>
                <StatusBadge status={agent.status} />
              </td>
              <td>{agent.auth_type.replaceAll("_", " ")}</td>
              <td className="agent-url">{agent.webhook_url}</td>
              <td>{agent.tags.join(", ") || "—"}</td>
              <td className="agent-nowrap">{formatDateTime(agent.updated_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

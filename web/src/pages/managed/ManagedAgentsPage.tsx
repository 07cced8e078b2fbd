import { useSearchParams } from "react-router";
import type { Page } from "../../api/client";
import { Pagination } from "../../components/Pagination";
import { SelectFilter } from "../../components/SelectFilter";
import { ErrorState, ResourceView } from "../../components/States";
import { AgentCard } from "./AgentCard";
import { applyEvent, useAgentEvents } from "./agent-events";
import { LiveIndicator } from "./LiveIndicator";
import { useLiveLoader } from "./live-loader";
import { AGENT_STATES, type LifecycleEvent, type ManagedAgent } from "./managed-agent.types";
import "./managed.css";

const PAGE_SIZE = 48;

/** The live status board of the organization's managed agents (/managed). */
export function ManagedAgentsPage() {
  const [params, setParams] = useSearchParams();
  const state = params.get("state") ?? "";
  const page = Number(params.get("page")) || 1;
  const agents = useLiveLoader(
    (api) => api.get<Page<ManagedAgent>>("/agents", { state, page, limit: PAGE_SIZE }),
    [state, page],
  );
  const shown = new Set(agents.data?.items.map((agent) => agent.id));
  const events = useAgentEvents({
    onReady: agents.reload,
    onEvent(event: LifecycleEvent) {
      agents.update((current) => ({
        ...current,
        items: current.items.map((agent) => applyEvent(agent, event)),
      }));
      // A new or deleted agent, or one leaving the filtered state, changes which cards there are.
      if (event.type === "status" && (state !== "" || event.to === "deleted" || !shown.has(event.agent_id)))
        agents.reload();
    },
  });
  const replace = (changed: ManagedAgent) =>
    agents.update((current) => ({
      ...current,
      items: current.items.map((agent) => (agent.id === changed.id ? changed : agent)),
    }));
  const filter = (next: Record<string, string>) => setParams({ ...Object.fromEntries(params), ...next });

  return (
    <section aria-labelledby="managed-heading">
      <div className="managed-title">
        <h1 id="managed-heading">Managed agents</h1>
        <LiveIndicator connection={events.connection} />
      </div>
      <div className="toolbar">
        <SelectFilter
          label="State"
          anyLabel="All states"
          options={AGENT_STATES}
          value={state}
          onChange={(value) => filter({ state: value, page: "1" })}
        />
      </div>
      {events.error !== undefined && agents.error === undefined && (
        <ErrorState error={events.error} onRetry={events.retry} />
      )}
      <ResourceView
        resource={agents}
        isEmpty={(data) => data.total === 0}
        empty={
          state
            ? `No agent is ${state} now.`
            : "No managed agents yet. Steward discovers them in its agents directory (STEWARD_AGENTS_DIR), and agents with a discovery token register themselves."
        }
      >
        {(data) => (
          <>
            {!data.has_more && <StateSummary agents={data.items} />}
            <ul className="managed-board">
              {data.items.map((agent) => (
                <li key={agent.id}>
                  <AgentCard agent={agent} onChanged={replace} />
                </li>
              ))}
            </ul>
            {data.total > data.limit && (
              <Pagination
                page={data}
                label="Managed agents"
                onPage={(next) => filter({ page: String(next) })}
              />
            )}
          </>
        )}
      </ResourceView>
    </section>
  );
}

/** "3 agents: 2 running, 1 failed". */
function StateSummary({ agents }: { agents: ManagedAgent[] }) {
  const counts = new Map<string, number>();
  for (const agent of agents) counts.set(agent.state, (counts.get(agent.state) ?? 0) + 1);
  const parts = AGENT_STATES.filter((value) => counts.has(value)).map(
    (value) => `${counts.get(value)} ${value}`,
  );
  return (
    <p className="managed-summary">
      {agents.length} {agents.length === 1 ? "agent" : "agents"}: {parts.join(", ")}
    </p>
  );
}

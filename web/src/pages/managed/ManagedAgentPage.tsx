import { useState } from "react";
import { Link, useParams } from "react-router";
import { useLoader } from "../../api/hooks";
import { ErrorState, ResourceView } from "../../components/States";
import { StatusBadge } from "../../components/StatusBadge";
import { AgentActions } from "./AgentActions";
import { AgentOverview } from "./AgentOverview";
import { applyEvent, useAgentEvents } from "./agent-events";
import { ConfigPanel } from "./ConfigPanel";
import { LiveIndicator } from "./LiveIndicator";
import { LogsPanel } from "./LogsPanel";
import { useLiveLoader } from "./live-loader";
import { MetricsPanel } from "./MetricsPanel";
import type { LifecycleEvent, ManagedAgent, ProcessState } from "./managed-agent.types";
import { OpenAlerts } from "./OpenAlerts";
import { StatusHistory } from "./StatusHistory";
import "./managed.css";

type Revisions = Record<LifecycleEvent["type"], number>;
const NO_REVISIONS: Revisions = { status: 0, heartbeat: 0, health: 0, alert: 0, config: 0, process: 0 };

/** One managed agent (/managed/:id): live state, metrics, logs, config and status history. */
export function ManagedAgentPage() {
  const { id = "" } = useParams();
  const path = `/agents/${encodeURIComponent(id)}`;
  const agent = useLiveLoader((api) => api.get<ManagedAgent>(path), [path]);
  // Each panel reloads when an event of its kind arrives for this agent.
  const [revisions, setRevisions] = useState(NO_REVISIONS);
  const bump = (...types: Array<LifecycleEvent["type"]>) =>
    setRevisions((current) => {
      const next = { ...current };
      for (const type of types) next[type] += 1;
      return next;
    });
  const events = useAgentEvents({
    onReady() {
      agent.reload();
      bump("status", "heartbeat", "alert", "config", "process");
    },
    onEvent(event) {
      if (event.agent_id !== id) return;
      agent.update((current) => applyEvent(current, event));
      bump(event.type);
    },
  });
  const managedProcess = agent.data?.managed_process === true;
  const process = useLoader(
    managedProcess ? (api) => api.get<{ process: ProcessState | null }>(`${path}/process`) : null,
    [path, managedProcess, revisions.process, revisions.status],
  );

  const processState = managedProcess ? process.data?.process : undefined;

  return (
    <section aria-labelledby="agent-heading">
      <p className="managed-back">
        <Link to="/managed">← All managed agents</Link>
      </p>
      <header className="managed-title">
        <h1 id="agent-heading">{agent.data?.name ?? "Managed agent"}</h1>
        {agent.data && <StatusBadge status={agent.data.state} />}
        <LiveIndicator connection={events.connection} />
        {agent.data && (
          <AgentActions
            agent={agent.data}
            process={processState}
            onChanged={(changed) => {
              agent.update(() => changed);
              process.reload();
            }}
          />
        )}
      </header>
      {events.error !== undefined && agent.error === undefined && (
        <ErrorState error={events.error} onRetry={events.retry} />
      )}
      <ResourceView resource={agent}>
        {(data) => (
          <>
            <AgentOverview agent={data} process={processState} />
            <OpenAlerts agentId={data.id} revision={revisions.alert + revisions.status} />
            <MetricsPanel agentId={data.id} revision={revisions.heartbeat} />
            <LogsPanel agentId={data.id} />
            <ConfigPanel agent={data} revision={revisions.config} />
            <StatusHistory agentId={data.id} revision={revisions.status} />
          </>
        )}
      </ResourceView>
    </section>
  );
}

import { useState } from "react";
import { Link, useParams } from "react-router";
import { useResource } from "../../api/hooks";
import { ResourceView } from "../../components/States";
import { StatusBadge } from "../../components/StatusBadge";
import { AgentConfig } from "./AgentConfig";
import { type Agent, PLATFORM_LABELS } from "./agent-types";
import { DeliveryList } from "./DeliveryList";
import { GovernancePanel } from "./GovernancePanel";
import { InvocationList } from "./InvocationList";
import { InvokeForm } from "./InvokeForm";
import "./agents.css";

/** One agent: its configuration, governance status, an invoke form, its invocations and deliveries. */
export function AgentDetailPage() {
  const { id = "" } = useParams();
  const agent = useResource<Agent>(`/external-agents/${encodeURIComponent(id)}`);
  // Bumped after each invocation from this page, so the lists below fetch again.
  const [generation, setGeneration] = useState(0);

  return (
    <ResourceView resource={agent}>
      {(data) => (
        <section aria-labelledby="agent-title">
          <p className="agent-breadcrumb">
            <Link to="/agents">Agents</Link> / {data.name}
          </p>
          <div className="agent-head">
            <h1 id="agent-title">{data.name}</h1>
            <StatusBadge status={data.status} />
            <span className="agent-muted">{PLATFORM_LABELS[data.platform]}</span>
          </div>
          {data.description && <p>{data.description}</p>}
          <div className="agent-columns">
            <InvokeForm
              agentId={data.id}
              disabled={data.status !== "active"}
              onInvoked={() => setGeneration((n) => n + 1)}
            />
            <GovernancePanel agent={data} generation={generation} />
          </div>
          <InvocationList agentId={data.id} generation={generation} />
          <DeliveryList agentId={data.id} generation={generation} />
          <AgentConfig agent={data} />
        </section>
      )}
    </ResourceView>
  );
}

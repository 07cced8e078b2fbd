import { useId } from "react";
import { Link } from "react-router";
import { StatusBadge } from "../../components/StatusBadge";
import { AgentActions } from "./AgentActions";
import { HealthFacts } from "./HealthFacts";
import type { ManagedAgent } from "./managed-agent.types";

/** One agent on the status board: state, health, last heartbeat, uptime and its buttons. */
export function AgentCard({
  agent,
  onChanged,
}: {
  agent: ManagedAgent;
  onChanged(agent: ManagedAgent): void;
}) {
  const headingId = useId();
  return (
    <article className={`panel managed-card managed-card-${agent.state}`} aria-labelledby={headingId}>
      <header className="managed-card-head">
        <h2 id={headingId}>
          <Link to={`/managed/${encodeURIComponent(agent.id)}`}>{agent.name}</Link>
        </h2>
        <StatusBadge status={agent.state} />
      </header>
      <p className="managed-card-kind">
        {agent.type} · v{agent.version}
        {agent.managed_process && " · run by Steward"}
      </p>
      <dl className="facts">
        <HealthFacts agent={agent} />
      </dl>
      <AgentActions agent={agent} onChanged={onChanged} />
    </article>
  );
}

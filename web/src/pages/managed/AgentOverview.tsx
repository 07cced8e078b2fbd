import { StatusBadge } from "../../components/StatusBadge";
import { formatTime } from "./clock";
import { HealthFacts } from "./HealthFacts";
import type { ManagedAgent, ProcessState } from "./managed-agent.types";

/** What the agent is and how it is doing now; `process` only for agents Steward runs. */
export function AgentOverview({ agent, process }: { agent: ManagedAgent; process?: ProcessState | null }) {
  return (
    <section className="panel" aria-labelledby="overview-heading">
      <h2 id="overview-heading" className="managed-panel-title">
        Overview
      </h2>
      <p>{agent.description}</p>
      <div className="managed-overview">
        <dl className="facts">
          <dt>State</dt>
          <dd>
            <StatusBadge status={agent.state} /> since {formatTime(agent.state_changed_at)}
          </dd>
          <HealthFacts agent={agent} reported />
          <dt>Heartbeat every</dt>
          <dd>{agent.heartbeat_interval_s} s</dd>
          {agent.managed_process && (
            <>
              <dt>Process</dt>
              <dd>{describeProcess(process)}</dd>
            </>
          )}
        </dl>
        <dl className="facts">
          <dt>ID</dt>
          <dd>
            <code>{agent.id}</code>
          </dd>
          <dt>Type</dt>
          <dd>{agent.type}</dd>
          <dt>Version</dt>
          <dd>{agent.version}</dd>
          <dt>Tags</dt>
          <dd>{agent.tags.length > 0 ? agent.tags.join(", ") : "none"}</dd>
          <dt>Subscribes to</dt>
          <dd>{agent.subscribed_topics.join(", ")}</dd>
          <dt>Findings on</dt>
          <dd>{agent.findings_topic}</dd>
        </dl>
      </div>
    </section>
  );
}

function describeProcess(process: ProcessState | null | undefined): string {
  if (process === undefined) return "…";
  if (process === null) return "not running on this Steward";
  const restarts = process.restarts === 1 ? "1 restart" : `${process.restarts} restarts`;
  if (process.pid === null) return `${process.state} (${restarts})`;
  return `pid ${process.pid}, ${process.state} (${restarts})`;
}

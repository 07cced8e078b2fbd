import { StatusBadge } from "../../components/StatusBadge";
import { TimeAgo, Uptime } from "./clock";
import type { ManagedAgent } from "./managed-agent.types";

/**
 * The rows of a facts list on how the agent is doing now: health, last heartbeat and
 * uptime. `reported` adds the status the agent gave in its last heartbeat.
 */
export function HealthFacts({ agent, reported = false }: { agent: ManagedAgent; reported?: boolean }) {
  const status = agent.last_heartbeat?.status;
  return (
    <>
      <dt>Health</dt>
      <dd>
        <StatusBadge status={agent.health} />
      </dd>
      <dt>Last heartbeat</dt>
      <dd>
        <TimeAgo iso={agent.last_heartbeat_at} />
        {reported && typeof status === "string" && ` (reported ${status})`}
      </dd>
      <dt>Uptime</dt>
      <dd>
        <Uptime agent={agent} />
      </dd>
    </>
  );
}

import { useLoader } from "../../api/hooks";
import type { GovernanceStatus } from "../../api/types";
import { ResourceView } from "../../components/States";
import { GovernanceFacts, RateLimitWindows } from "./RateLimitWindows";

/** The selected agent's rate-limit windows and what else governs its next call. */
export function RateLimitSection({
  agentId,
  agentName,
  refreshedAt,
}: {
  agentId: string;
  agentName: string;
  refreshedAt: number;
}) {
  const status = useLoader(
    (api) => api.get<GovernanceStatus>(`/external-agents/${agentId}/governance-status`),
    [agentId, refreshedAt],
  );
  return (
    <section aria-labelledby="windows-heading">
      <h2 id="windows-heading">Rate-limit windows of {agentName}</h2>
      <ResourceView resource={status}>
        {(data) => (
          <div className="panel">
            <RateLimitWindows status={data} />
            <GovernanceFacts status={data} />
          </div>
        )}
      </ResourceView>
    </section>
  );
}

import { useResource } from "../../api/hooks";
import { ResourceView } from "../../components/States";
import { ActivityTotals, DecisionsChart, SpendChart } from "./ActivityCharts";
import { activityQuery, RANGES, type RangeName } from "./activity-range";
import type { GovernanceActivity } from "./governance-types";

/** Spend and decisions over the chosen range, for one agent or all of them. */
export function ActivitySection({
  agentId,
  range,
  refreshedAt,
}: {
  agentId: string;
  range: RangeName;
  refreshedAt: number;
}) {
  const activity = useResource<GovernanceActivity>("/governance/activity", {
    agent_id: agentId,
    ...activityQuery(range, refreshedAt),
  });
  return (
    <section aria-labelledby="activity-heading">
      <h2 id="activity-heading">Activity · {RANGES[range].label.toLowerCase()}</h2>
      <ResourceView resource={activity}>
        {(data) => (
          <>
            <ActivityTotals activity={data} />
            <div className="grid activity-grid">
              <div className="panel">
                <SpendChart activity={data} />
              </div>
              <div className="panel">
                <DecisionsChart activity={data} />
              </div>
            </div>
          </>
        )}
      </ResourceView>
    </section>
  );
}

import type { Api } from "../../api/client";
import { useLoader } from "../../api/hooks";
import type { AgentSummary } from "../../api/types";
import { Empty, ResourceView } from "../../components/States";
import { BudgetGauges } from "./BudgetGauges";
import type { BudgetStatus } from "./governance-types";

interface Budgets {
  organization: BudgetStatus;
  agents: BudgetStatus[];
}

const hasCostCap = (agent: AgentSummary) =>
  agent.budget_config.max_daily_cost !== undefined || agent.budget_config.max_monthly_cost !== undefined;

async function loadBudgets(api: Api, agentIds: string[]): Promise<Budgets> {
  const [organization, agents] = await Promise.all([
    api.get<BudgetStatus>("/governance/budget"),
    Promise.all(agentIds.map((id) => api.get<BudgetStatus>(`/external-agents/${id}/budget`))),
  ]);
  return { organization, agents };
}

/**
 * The organization's budget and the chosen agent's, or, for all agents, every agent
 * with a cost cap (an agent without one has nothing to gauge).
 */
export function BudgetSection({
  agentId,
  agents,
  refreshedAt,
}: {
  agentId: string;
  agents: AgentSummary[] | undefined;
  refreshedAt: number;
}) {
  // Without the agent list (still loading, or failed) only a chosen agent is known.
  const shownIds = agentId ? [agentId] : agents?.filter(hasCostCap).map((agent) => agent.id);
  const budgets = useLoader(shownIds ? (api) => loadBudgets(api, shownIds) : null, [
    shownIds?.join(),
    refreshedAt,
  ]);
  const nameOf = (id: string) => agents?.find((agent) => agent.id === id)?.name ?? id;
  return (
    <section aria-labelledby="budgets-heading">
      <h2 id="budgets-heading">Budgets</h2>
      <ResourceView resource={budgets}>
        {({ organization, agents: perAgent }) => (
          <div className="grid budget-grid">
            <BudgetGauges name="Organization" status={organization} />
            {perAgent.map((status) => (
              <BudgetGauges key={status.scope_id} name={nameOf(status.scope_id)} status={status} />
            ))}
            {perAgent.length === 0 && (
              <div className="panel">
                <Empty>No agent has a daily or monthly cost cap.</Empty>
              </div>
            )}
          </div>
        )}
      </ResourceView>
    </section>
  );
}

import { useCallback, useState } from "react";
import { useSearchParams } from "react-router";
import { useInterval } from "../../api/hooks";
import { SelectFilter } from "../../components/SelectFilter";
import { ErrorState } from "../../components/States";
import { ActivitySection } from "./ActivitySection";
import { isRangeName, RANGES, type RangeName } from "./activity-range";
import { AgentSelect, useAgentOptions } from "./agent-options";
import { BudgetSection } from "./BudgetSection";
import { RateLimitSection } from "./RateLimitSection";
import "./governance.css";

/** How often the figures are fetched again while the page is open. */
const REFRESH_MS = 60_000;
const RANGE_OPTIONS = Object.entries(RANGES).map(([name, { label }]) => ({ value: name, label }));

/** Budgets, spend, decisions and rate-limit windows, for all agents or one (kept in the URL). */
export function GovernancePage() {
  const [params, setParams] = useSearchParams();
  const agentId = params.get("agent") ?? "";
  const rangeParam = params.get("range");
  const range: RangeName = isRangeName(rangeParam) ? rangeParam : "day";
  const agents = useAgentOptions();
  const [refreshedAt, setRefreshedAt] = useState(() => Date.now());
  useInterval(
    useCallback(() => setRefreshedAt(Date.now()), []),
    REFRESH_MS,
  );

  const choose = (key: "agent" | "range", value: string) =>
    setParams(
      (current) => {
        const next = new URLSearchParams(current);
        if (value) next.set(key, value);
        else next.delete(key);
        return next;
      },
      { replace: true },
    );
  const agentName = agents.data?.items.find((agent) => agent.id === agentId)?.name ?? agentId;

  return (
    <section>
      <h1>Governance</h1>
      <div className="toolbar governance-toolbar">
        <AgentSelect
          agents={agents.data?.items ?? []}
          value={agentId}
          onChange={(id) => choose("agent", id)}
        />
        <SelectFilter
          label="Range"
          options={RANGE_OPTIONS}
          value={range}
          onChange={(value) => choose("range", value)}
        />
      </div>
      {agents.error !== undefined && <ErrorState error={agents.error} onRetry={agents.reload} />}
      <BudgetSection agentId={agentId} agents={agents.data?.items} refreshedAt={refreshedAt} />
      <ActivitySection agentId={agentId} range={range} refreshedAt={refreshedAt} />
      {agentId && <RateLimitSection agentId={agentId} agentName={agentName} refreshedAt={refreshedAt} />}
    </section>
  );
}

import type { Page } from "../../api/client";
import { type Resource, useResource } from "../../api/hooks";
import type { AgentSummary } from "../../api/types";
import { SelectFilter } from "../../components/SelectFilter";

/** The organization's agents for a picker: the first page the API allows, by its order. */
export function useAgentOptions(): Resource<Page<AgentSummary>> {
  return useResource<Page<AgentSummary>>("/external-agents", { limit: 100 });
}

/** A labelled agent picker whose empty choice means every agent. */
export function AgentSelect({
  agents,
  value,
  onChange,
}: {
  agents: AgentSummary[];
  value: string;
  onChange: (agentId: string) => void;
}) {
  return (
    <SelectFilter
      label="Agent"
      anyLabel="All agents"
      options={agents.map((agent) => ({ value: agent.id, label: agent.name }))}
      value={value}
      onChange={onChange}
    />
  );
}

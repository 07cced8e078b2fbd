import { type FormEvent, useState } from "react";
import type { Query } from "../../api/client";
import type { AgentSummary } from "../../api/types";
import { Field } from "../../components/Field";
import { SelectFilter } from "../../components/SelectFilter";
import { AgentSelect } from "../governance/agent-options";
import { RECORD_STATUSES } from "./lineage-types";

/** The search as the URL keeps it, so a search can be shared and survives a reload. */
export const FILTER_KEYS = ["user", "system", "agent", "status", "from", "to"] as const;
export type FilterKey = (typeof FILTER_KEYS)[number];
export type Filters = Record<FilterKey, string>;

const STATUS_OPTIONS = RECORD_STATUSES.map((status) => ({
  value: status,
  label: status.replaceAll("_", " "),
}));

export function filtersFrom(params: URLSearchParams): Filters {
  return Object.fromEntries(FILTER_KEYS.map((key) => [key, params.get(key) ?? ""])) as Filters;
}

/** A date-time input's local value as the instant the API expects. */
function instant(local: string): string | undefined {
  const date = new Date(local);
  return local && !Number.isNaN(date.getTime()) ? date.toISOString() : undefined;
}

/**
 * The filters of GET /lineage and /lineage/export. The user box takes either identifier:
 * an e-mail address matches external_user_email, anything else external_user_id.
 */
export function apiFilters(filters: Filters): Query {
  const byEmail = filters.user.includes("@");
  return {
    external_user_email: byEmail ? filters.user : undefined,
    external_user_id: byEmail ? undefined : filters.user,
    external_system: filters.system,
    external_agent_id: filters.agent,
    status: filters.status,
    from: instant(filters.from),
    to: instant(filters.to),
  };
}

function TextFilter({
  label,
  help,
  value,
  onChange,
  type = "text",
}: {
  label: string;
  help?: string;
  value: string;
  onChange: (value: string) => void;
  type?: "text" | "search" | "datetime-local";
}) {
  return (
    <Field label={label} help={help}>
      {(props) => (
        <input {...props} type={type} value={value} onChange={(event) => onChange(event.target.value)} />
      )}
    </Field>
  );
}

/** The search form: edits stay local until Search applies them. */
export function LineageFilters({
  applied,
  agents,
  onApply,
}: {
  applied: Filters;
  agents: AgentSummary[];
  onApply: (filters: Filters) => void;
}) {
  const [draft, setDraft] = useState(applied);
  const set = (key: FilterKey) => (value: string) => setDraft((current) => ({ ...current, [key]: value }));
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onApply({ ...draft, user: draft.user.trim(), system: draft.system.trim() });
  };
  const clear = () => {
    const empty = filtersFrom(new URLSearchParams());
    setDraft(empty);
    onApply(empty);
  };
  return (
    <search className="panel lineage-filters" aria-label="Search records">
      <form onSubmit={submit}>
        <div className="lineage-filter-grid">
          <TextFilter
            label="External user"
            help="User id, or e-mail address"
            type="search"
            value={draft.user}
            onChange={set("user")}
          />
          <TextFilter label="External system" value={draft.system} onChange={set("system")} />
          <AgentSelect agents={agents} value={draft.agent} onChange={set("agent")} />
          <SelectFilter
            label="Status"
            anyLabel="Any status"
            options={STATUS_OPTIONS}
            value={draft.status}
            onChange={set("status")}
          />
          <TextFilter label="From" type="datetime-local" value={draft.from} onChange={set("from")} />
          <TextFilter label="To" type="datetime-local" value={draft.to} onChange={set("to")} />
        </div>
        <div className="lineage-filter-actions">
          <button type="submit">Search</button>
          <button type="button" className="secondary" onClick={clear}>
            Clear
          </button>
        </div>
      </form>
    </search>
  );
}

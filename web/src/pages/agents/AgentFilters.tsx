import type { FormEvent } from "react";
import { Field } from "../../components/Field";
import { SelectFilter } from "../../components/SelectFilter";
import { AGENT_STATUSES, PLATFORM_LABELS, PLATFORMS } from "./agent-types";

/** The query parameters of GET /external-agents this screen sets, kept as they are in the page URL. */
export const FILTER_KEYS = ["search", "platform", "status"] as const;

const PLATFORM_OPTIONS = PLATFORMS.map((platform) => ({ value: platform, label: PLATFORM_LABELS[platform] }));

/** Search, platform and status filters of the agent list. */
export function AgentFilters({
  params,
  onChange,
}: {
  params: URLSearchParams;
  onChange: (key: string, value: string) => void;
}) {
  const search = params.get("search") ?? "";
  const submitSearch = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const value = new FormData(event.currentTarget).get("search");
    onChange("search", typeof value === "string" ? value.trim() : "");
  };
  return (
    <search className="toolbar" aria-label="Filter agents">
      {/* Keyed by the URL's value, so going back in history shows that search in the box. */}
      <form key={search} className="agent-search" onSubmit={submitSearch}>
        <Field label="Search">
          {(props) => (
            <input
              {...props}
              name="search"
              type="search"
              defaultValue={search}
              placeholder="Name or description"
            />
          )}
        </Field>
        <div className="field">
          <button type="submit" className="secondary">
            Search
          </button>
        </div>
      </form>
      <SelectFilter
        label="Platform"
        anyLabel="All platforms"
        options={PLATFORM_OPTIONS}
        value={params.get("platform") ?? ""}
        onChange={(value) => onChange("platform", value)}
      />
      <SelectFilter
        label="Status"
        anyLabel="Active and inactive"
        options={AGENT_STATUSES}
        value={params.get("status") ?? ""}
        onChange={(value) => onChange("status", value)}
      />
    </search>
  );
}

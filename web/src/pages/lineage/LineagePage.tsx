import { useSearchParams } from "react-router";
import type { Page } from "../../api/client";
import { useResource } from "../../api/hooks";
import { Pagination } from "../../components/Pagination";
import { ResourceView } from "../../components/States";
import { useAgentOptions } from "../governance/agent-options";
import { ChainStatus } from "./ChainStatus";
import { ExportButtons } from "./ExportButtons";
import { apiFilters, FILTER_KEYS, type Filters, filtersFrom, LineageFilters } from "./LineageFilters";
import { LineageTable } from "./LineageTable";
import type { LineageRecord } from "./lineage-types";
import "./lineage.css";

const PAGE_SIZE = 25;

/** Search, page through and export the invocation records, and check their hash chain. */
export function LineagePage() {
  const [params, setParams] = useSearchParams();
  const filters = filtersFrom(params);
  const page = Math.max(1, Number(params.get("page")) || 1);
  const query = apiFilters(filters);
  const records = useResource<Page<LineageRecord>>("/lineage", { ...query, page, limit: PAGE_SIZE });
  const agents = useAgentOptions();

  const applyFilters = (next: Filters) =>
    setParams(() => {
      const updated = new URLSearchParams();
      for (const key of FILTER_KEYS) if (next[key]) updated.set(key, next[key]);
      return updated;
    });
  const goToPage = (next: number) =>
    setParams((current) => {
      const updated = new URLSearchParams(current);
      updated.set("page", String(next));
      return updated;
    });

  return (
    <section>
      <h1>Lineage</h1>
      <ChainStatus />
      <section aria-labelledby="records-heading">
        <h2 id="records-heading">Records</h2>
        <LineageFilters
          key={JSON.stringify(filters)}
          applied={filters}
          agents={agents.data?.items ?? []}
          onApply={applyFilters}
        />
        <ExportButtons filters={query} />
        <ResourceView
          resource={records}
          isEmpty={(data) => data.total === 0}
          empty="No records match this search."
        >
          {(data) => (
            <>
              <LineageTable records={data.items} caption="Invocation records, newest first" />
              <Pagination page={data} onPage={goToPage} label="Records" />
            </>
          )}
        </ResourceView>
      </section>
    </section>
  );
}

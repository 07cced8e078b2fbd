import { type FormEvent, useState } from "react";
import type { Page } from "../../api/client";
import { useInterval, useLoader } from "../../api/hooks";
import { Field } from "../../components/Field";
import { Pagination } from "../../components/Pagination";
import { SelectFilter } from "../../components/SelectFilter";
import { ResourceView } from "../../components/States";
import { formatTime } from "./clock";
import type { LogEntry, LogLevel } from "./managed-agent.types";

const PAGE_SIZE = 25;
const REFRESH_MS = 10_000;

/** The API filters by a minimum level: the chosen one and every more severe one. */
const LEVEL_FILTERS: Array<{ value: "" | LogLevel; label: string }> = [
  { value: "", label: "Any level" },
  { value: "debug", label: "Debug and above" },
  { value: "info", label: "Info and above" },
  { value: "warn", label: "Warnings and above" },
  { value: "error", label: "Errors and above" },
  { value: "fatal", label: "Fatal only" },
];

const LEVEL_TONES: Record<LogLevel, string> = {
  trace: "idle",
  debug: "idle",
  info: "good",
  warn: "warn",
  error: "bad",
  fatal: "bad",
};

/** The agent's log, newest first, filtered by level and text; refreshed while open. */
export function LogsPanel({ agentId }: { agentId: string }) {
  const [level, setLevel] = useState<"" | LogLevel>("");
  const [search, setSearch] = useState("");
  const [query, setQuery] = useState("");
  const [page, setPage] = useState(1);
  const logs = useLoader(
    (api) =>
      api.get<Page<LogEntry>>(`/agents/${encodeURIComponent(agentId)}/logs`, {
        level,
        q: query,
        page,
        limit: PAGE_SIZE,
      }),
    [agentId, level, query, page],
  );
  useInterval(logs.reload, REFRESH_MS);
  const applySearch = (event: FormEvent) => {
    event.preventDefault();
    setQuery(search.trim());
    setPage(1);
  };
  return (
    <section className="panel" aria-labelledby="logs-heading">
      <h2 id="logs-heading" className="managed-panel-title">
        Logs
      </h2>
      <form className="toolbar" onSubmit={applySearch} aria-label="Filter logs">
        <SelectFilter
          label="Level"
          options={LEVEL_FILTERS}
          value={level}
          onChange={(value) => {
            setLevel(value as "" | LogLevel);
            setPage(1);
          }}
        />
        <Field label="Message contains">
          {(props) => (
            <input
              {...props}
              type="search"
              value={search}
              maxLength={200}
              onChange={(event) => setSearch(event.target.value)}
            />
          )}
        </Field>
        <div className="field">
          <button type="submit">Search</button>
        </div>
        <div className="field">
          <button type="button" className="secondary" onClick={logs.reload}>
            Refresh logs
          </button>
        </div>
      </form>
      <ResourceView
        resource={logs}
        isEmpty={(data) => data.total === 0}
        empty={
          level || query ? "No log entries match these filters." : "The agent has not logged anything yet."
        }
      >
        {(data) => (
          <>
            <div className="table-wrap">
              <table className="managed-logs">
                <caption className="visually-hidden">Log entries, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">Time</th>
                    <th scope="col">Level</th>
                    <th scope="col">Message</th>
                  </tr>
                </thead>
                <tbody>
                  {data.items.map((entry) => (
                    <LogRow key={entry.id} entry={entry} />
                  ))}
                </tbody>
              </table>
            </div>
            {data.total > data.limit && <Pagination page={data} label="Log" onPage={setPage} />}
          </>
        )}
      </ResourceView>
    </section>
  );
}

function LogRow({ entry }: { entry: LogEntry }) {
  const hasContext = Object.keys(entry.context).length > 0;
  return (
    <tr>
      <td className="managed-log-time">
        <time dateTime={entry.logged_at}>{formatTime(entry.logged_at)}</time>
      </td>
      <td>
        <span className={`badge badge-${LEVEL_TONES[entry.level]}`}>{entry.level}</span>
      </td>
      <td>
        <span className="managed-log-message">{entry.message}</span>
        {hasContext && <code className="managed-log-context">{JSON.stringify(entry.context)}</code>}
      </td>
    </tr>
  );
}

import { useState } from "react";
import { errorMessage, type Page } from "../../api/client";
import { useLoader } from "../../api/hooks";
import { useApi } from "../../auth/session";
import { Pagination } from "../../components/Pagination";
import { ResourceView } from "../../components/States";
import { formatTime } from "./clock";
import type { ConfigDiff, ConfigVersion, EffectiveConfig } from "./managed-agent.types";

const PAGE_SIZE = 10;

/** Stored versions, newest first, each with what changed; an old one can be stored again (rollback). */
export function ConfigHistory({
  agentId,
  currentVersion,
  onSaved,
}: {
  agentId: string;
  currentVersion: number;
  onSaved(view: EffectiveConfig): void;
}) {
  const [page, setPage] = useState(1);
  const history = useLoader(
    (api) =>
      api.get<Page<ConfigVersion>>(`/agents/${encodeURIComponent(agentId)}/config/history`, {
        page,
        limit: PAGE_SIZE,
      }),
    [agentId, page, currentVersion],
  );
  return (
    <ResourceView
      resource={history}
      isEmpty={(data) => data.total === 0}
      empty="No version stored yet: the agent runs on its defaults and the environment."
    >
      {(data) => (
        <>
          <ol className="managed-versions">
            {data.items.map((version) => (
              <VersionEntry
                key={version.version}
                agentId={agentId}
                version={version}
                current={version.version === currentVersion}
                onSaved={onSaved}
              />
            ))}
          </ol>
          {data.total > data.limit && <Pagination page={data} label="Config history" onPage={setPage} />}
        </>
      )}
    </ResourceView>
  );
}

function VersionEntry({
  agentId,
  version,
  current,
  onSaved,
}: {
  agentId: string;
  version: ConfigVersion;
  current: boolean;
  onSaved(view: EffectiveConfig): void;
}) {
  const api = useApi();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  // A rollback is a new version with the old one's config, so the history keeps both.
  const rollBack = async () => {
    setBusy(true);
    setError(undefined);
    try {
      onSaved(
        await api.put<EffectiveConfig>(`/agents/${encodeURIComponent(agentId)}/config`, version.config),
      );
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return (
    <li className="managed-version" aria-label={`Version ${version.version}`}>
      <div className="managed-version-head">
        <h4>Version {version.version}</h4>
        {current && <span className="badge badge-good">in force</span>}
        <span className="managed-version-meta">
          by {version.author.type} {version.author.id},{" "}
          <time dateTime={version.created_at}>{formatTime(version.created_at)}</time>
        </span>
        {!current && (
          <button type="button" className="secondary" disabled={busy} onClick={rollBack}>
            {busy ? "Rolling back…" : `Roll back to version ${version.version}`}
          </button>
        )}
      </div>
      <DiffList diff={version.diff} />
      {error !== undefined && (
        <p className="field-error" role="alert">
          {errorMessage(error)}
        </p>
      )}
    </li>
  );
}

const show = (value: unknown) => JSON.stringify(value);

/** Each changed key in words as well as colour: added, removed, changed from → to. */
function DiffList({ diff }: { diff: ConfigDiff }) {
  const added = Object.entries(diff.added);
  const changed = Object.entries(diff.changed);
  if (added.length + changed.length + diff.removed.length === 0)
    return <p className="field-help">Same as the version before.</p>;
  return (
    <ul className="managed-diff">
      {added.map(([key, value]) => (
        <li key={`+${key}`} className="managed-diff-added">
          <span className="managed-diff-kind">added</span> <code>{key}</code> = <code>{show(value)}</code>
        </li>
      ))}
      {changed.map(([key, { from, to }]) => (
        <li key={`~${key}`} className="managed-diff-changed">
          <span className="managed-diff-kind">changed</span> <code>{key}</code>: <code>{show(from)}</code> →{" "}
          <code>{show(to)}</code>
        </li>
      ))}
      {diff.removed.map((key) => (
        <li key={`-${key}`} className="managed-diff-removed">
          <span className="managed-diff-kind">removed</span> <code>{key}</code>
        </li>
      ))}
    </ul>
  );
}

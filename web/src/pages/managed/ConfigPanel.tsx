import { useState } from "react";
import type { Page } from "../../api/client";
import { useLoader } from "../../api/hooks";
import { ResourceView } from "../../components/States";
import { ConfigEditor } from "./ConfigEditor";
import { ConfigHistory } from "./ConfigHistory";
import type { ConfigVersion, EffectiveConfig, ManagedAgent } from "./managed-agent.types";

/**
 * The agent's configuration: what is in force and where each key comes from, the
 * editor of the stored layer, and the stored versions. `revision` reloads it (a config
 * event: someone else saved).
 */
export function ConfigPanel({ agent, revision }: { agent: ManagedAgent; revision: number }) {
  const [saved, setSaved] = useState<EffectiveConfig>();
  const base = `/agents/${encodeURIComponent(agent.id)}/config`;
  const config = useLoader(
    async (api) => {
      const [effective, latest] = await Promise.all([
        api.get<EffectiveConfig>(base),
        api.get<Page<ConfigVersion>>(`${base}/history`, { limit: 1 }),
      ]);
      const newest = latest.items[0];
      return { effective, stored: newest?.version === effective.version ? newest.config : {} };
    },
    [base, revision, saved],
  );
  return (
    <section className="panel" aria-labelledby="config-heading">
      <h2 id="config-heading" className="managed-panel-title">
        Configuration
      </h2>
      <ResourceView resource={config}>
        {({ effective, stored }) => (
          <>
            <h3>
              In force {effective.version > 0 ? `(version ${effective.version})` : "(no stored version)"}
            </h3>
            <EffectiveTable effective={effective} />
            <h3>Edit</h3>
            {saved && (
              <p className="managed-saved" role="status">
                Saved as version {saved.version}.
              </p>
            )}
            <ConfigEditor
              key={effective.version}
              agentId={agent.id}
              schema={agent.config_schema}
              effective={effective}
              stored={stored}
              onSaved={setSaved}
            />
            <h3>History</h3>
            <ConfigHistory agentId={agent.id} currentVersion={effective.version} onSaved={setSaved} />
          </>
        )}
      </ResourceView>
    </section>
  );
}

function EffectiveTable({ effective }: { effective: EffectiveConfig }) {
  const keys = Object.keys(effective.config).sort();
  if (keys.length === 0) return <p className="state state-empty">No key is set by any layer.</p>;
  return (
    <div className="table-wrap">
      <table>
        <caption className="visually-hidden">Effective config and the source of each key</caption>
        <thead>
          <tr>
            <th scope="col">Key</th>
            <th scope="col">Value</th>
            <th scope="col">Source</th>
          </tr>
        </thead>
        <tbody>
          {keys.map((key) => (
            <tr key={key}>
              <th scope="row">
                <code>{key}</code>
              </th>
              <td>
                <code>{JSON.stringify(effective.config[key])}</code>
              </td>
              <td>
                <span className={`badge managed-source-${effective.sources[key] ?? "default"}`}>
                  {effective.sources[key]}
                </span>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

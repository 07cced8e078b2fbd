import type { Agent } from "./agent-types";
import { ConfigFacts } from "./ConfigFacts";
import { formatDateTime } from "./format";

/** How the agent is set up. Credentials arrive masked from the API (`****abcd`) and are shown as they come. */
export function AgentConfig({ agent }: { agent: Agent }) {
  return (
    <section className="panel agent-panel" aria-labelledby="config-title">
      <h2 id="config-title">Configuration</h2>
      <dl className="facts">
        <dt>ID</dt>
        <dd>
          <code>{agent.id}</code>
        </dd>
        <dt>Endpoint</dt>
        <dd className="agent-url">{agent.webhook_url}</dd>
        <dt>Authentication</dt>
        <dd>{agent.auth_type.replaceAll("_", " ")}</dd>
        <dt>Tags</dt>
        <dd>{agent.tags.join(", ") || "—"}</dd>
        <dt>Capabilities</dt>
        <dd>{agent.capabilities.join(", ") || "—"}</dd>
        <dt>Version</dt>
        <dd>{agent.version}</dd>
        <dt>Created</dt>
        <dd>{formatDateTime(agent.created_at)}</dd>
        <dt>Updated</dt>
        <dd>{formatDateTime(agent.updated_at)}</dd>
      </dl>
      <div className="grid agent-config-grid">
        <ConfigSection title="Authentication settings" config={agent.auth_config} />
        <ConfigSection title="Platform settings" config={agent.platform_config} />
        <ConfigSection title="Rate limits" config={agent.rate_limit_config} />
        <ConfigSection title="Budget" config={agent.budget_config} />
        <ConfigSection title="Approval rules" config={agent.approval_config ?? {}} />
      </div>
    </section>
  );
}

function ConfigSection({ title, config }: { title: string; config: Record<string, unknown> }) {
  return (
    <section>
      <h3>{title}</h3>
      <ConfigFacts config={config} />
    </section>
  );
}

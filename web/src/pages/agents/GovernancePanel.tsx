import { Link } from "react-router";
import { useLoader } from "../../api/hooks";
import type { BudgetUsage, GovernanceStatus, RateLimitWindow } from "../../api/types";
import { Gauge } from "../../components/charts";
import { ResourceView } from "../../components/States";
import { StatusBadge } from "../../components/StatusBadge";
import type { Agent } from "./agent-types";
import { formatDateTime } from "./format";

/** What would decide the agent's next call: budgets, rate-limit windows, policies, pending approvals. */
export function GovernancePanel({ agent, generation }: { agent: Agent; generation: number }) {
  const status = useLoader<GovernanceStatus>(
    (api) => api.get(`/external-agents/${agent.id}/governance-status`),
    [agent.id, generation],
  );
  return (
    <section className="panel agent-panel" aria-labelledby="governance-title">
      <div className="agent-section-head">
        <h2 id="governance-title">Governance status</h2>
        <button
          type="button"
          className="secondary"
          onClick={status.reload}
          aria-label="Refresh governance status"
        >
          Refresh
        </button>
      </div>
      <ResourceView resource={status}>
        {(data) => (
          <>
            {(data.degraded.budget || data.degraded.rate_limiter) && (
              <p className="agent-notice-warn">
                Degraded:{" "}
                {[
                  data.degraded.budget && "budget",
                  data.degraded.rate_limiter && "rate-limit store unavailable",
                ]
                  .filter(Boolean)
                  .join(", ")}
              </p>
            )}
            <h3>Budget</h3>
            <BudgetGauges scope="Agent" usage={data.budget.agent} config={agent.budget_config} />
            <BudgetGauges scope="Organization" usage={data.budget.organization} />
            <h3>Rate limits</h3>
            <RateLimitWindows available={data.rate_limits.available} windows={data.rate_limits.windows} />
            <h3>Policies</h3>
            <PolicyList policies={data.policies} />
            <h3>Approvals</h3>
            <p>
              {data.pending_approvals === 0 ? (
                "No call is waiting for approval."
              ) : (
                <Link to="/approvals">
                  {data.pending_approvals} {data.pending_approvals === 1 ? "call waits" : "calls wait"} for
                  approval
                </Link>
              )}
            </p>
          </>
        )}
      </ResourceView>
    </section>
  );
}

const PERIOD_LABELS: Record<string, string> = { day: "daily", month: "monthly" };

function currencyUnit(currency = "USD"): string {
  return currency === "USD" ? "$" : `${currency} `;
}

function BudgetGauges({
  scope,
  usage,
  config,
}: {
  scope: string;
  usage: BudgetUsage[];
  config?: Agent["budget_config"];
}) {
  const capped = usage.filter((period) => period.limit !== null);
  const executions = usage.filter((period) => period.execution_limit !== null);
  if (capped.length === 0 && executions.length === 0) {
    const spent = usage.reduce((sum, period) => Math.max(sum, period.cost_used), 0);
    return (
      <p className="agent-muted">
        {scope}: no cost cap ({currencyUnit(config?.currency)}
        {spent.toFixed(2)} used this month).
      </p>
    );
  }
  return (
    <>
      {capped.map((period) => (
        <Gauge
          key={period.period}
          label={`${scope} ${PERIOD_LABELS[period.period] ?? period.period} cost (resets ${formatDateTime(period.reset_at)})`}
          used={period.cost_used + period.reserved}
          cap={period.limit ?? 0}
          warnAt={config?.warning_threshold}
          degradeAt={config?.degradation_threshold}
          unit={currencyUnit(config?.currency)}
        />
      ))}
      {executions.map((period) => (
        <p key={`${period.period}-executions`}>
          {scope} {PERIOD_LABELS[period.period] ?? period.period} calls: {period.invocations} of{" "}
          {period.execution_limit}
          {period.limit_reached && (
            <>
              {" "}
              <StatusBadge status="budget_exceeded" />
            </>
          )}
        </p>
      ))}
    </>
  );
}

function RateLimitWindows({ available, windows }: { available: boolean; windows: RateLimitWindow[] }) {
  if (!available) return <p className="agent-notice-warn">The rate-limit store could not be read.</p>;
  if (windows.length === 0) return <p className="agent-muted">No rate limit applies.</p>;
  return (
    <div className="table-wrap">
      <table>
        <caption className="visually-hidden">Rate-limit windows</caption>
        <thead>
          <tr>
            <th scope="col">Window</th>
            <th scope="col">Used</th>
            <th scope="col">Limit</th>
            <th scope="col">Remaining</th>
            <th scope="col">Resets in</th>
          </tr>
        </thead>
        <tbody>
          {windows.map((window) => (
            <tr key={window.window}>
              <td>{window.window}</td>
              <td>{window.used}</td>
              <td>{window.limit}</td>
              <td>{window.remaining}</td>
              <td>{window.reset_seconds} s</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function PolicyList({ policies }: { policies: GovernanceStatus["policies"] }) {
  if (policies.applicable.length === 0) return <p className="agent-muted">No enabled policy.</p>;
  return (
    <>
      <p className="agent-muted">Combined with {policies.combining.replaceAll("_", " ")}.</p>
      <ul className="agent-policies">
        {policies.applicable.map((policy) => (
          <li key={policy.id}>
            <span className={`badge ${policy.effect === "deny" ? "badge-bad" : "badge-good"}`}>
              {policy.effect}
            </span>{" "}
            {policy.name} <span className="agent-muted">(priority {policy.priority})</span>
          </li>
        ))}
      </ul>
    </>
  );
}

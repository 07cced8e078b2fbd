import { useId } from "react";
import type { BudgetConfig, BudgetUsage } from "../../api/types";
import { Gauge } from "../../components/charts";
import type { BudgetStatus } from "./governance-types";

/** Steward's thresholds when a budget leaves them unset (BUDGET_DEFAULTS on the server). */
const DEFAULT_WARNING = 0.8;
const DEFAULT_DEGRADATION = 0.9;

function currencyUnit(config: BudgetConfig): string {
  const currency = config.currency ?? "USD";
  return currency === "USD" ? "$" : `${currency} `;
}

function PeriodUsage({
  periodName,
  usage,
  config,
}: {
  periodName: string;
  usage: BudgetUsage;
  config: BudgetConfig;
}) {
  const unit = currencyUnit(config);
  const label = `${periodName} spend`;
  return (
    <div className="budget-period">
      {usage.limit === null ? (
        <p className="budget-uncapped">
          {label}: {unit}
          {usage.cost_used.toFixed(2)}, no cap
        </p>
      ) : (
        <Gauge
          label={label}
          used={usage.cost_used}
          cap={usage.limit}
          warnAt={config.warning_threshold ?? DEFAULT_WARNING}
          degradeAt={config.degradation_threshold ?? DEFAULT_DEGRADATION}
          unit={unit}
        />
      )}
      <p className="budget-detail">
        {usage.invocations} {usage.invocations === 1 ? "call" : "calls"}
        {usage.execution_limit !== null && ` of ${usage.execution_limit} allowed`}
        {usage.reserved > 0 && ` · ${unit}${usage.reserved.toFixed(2)} reserved for calls in flight`}
        {" · resets "}
        {new Date(usage.reset_at).toLocaleString()}
      </p>
    </div>
  );
}

/** The most serious flag of any period, for a badge. */
function budgetState(periods: BudgetUsage[]): { text: string; tone: "bad" | "warn" } | null {
  if (periods.some((usage) => usage.limit_reached)) return { text: "limit reached", tone: "bad" };
  if (periods.some((usage) => usage.degraded)) return { text: "degraded", tone: "bad" };
  if (periods.some((usage) => usage.warning)) return { text: "warning", tone: "warn" };
  return null;
}

/** The day's and the month's spend of one agent or the organization, with its state. */
export function BudgetGauges({ name, status }: { name: string; status: BudgetStatus }) {
  const state = budgetState([status.daily, status.monthly]);
  const headingId = useId();
  return (
    <article className="panel budget-card" aria-labelledby={headingId}>
      <header className="budget-card-header">
        <h3 id={headingId} className="budget-card-title">
          {name}
        </h3>
        {state && <span className={`badge badge-${state.tone}`}>{state.text}</span>}
        <span className="budget-mode">{status.budget_config.enforcement_mode ?? "hard"} caps</span>
      </header>
      <PeriodUsage periodName="Today's" usage={status.daily} config={status.budget_config} />
      <PeriodUsage periodName="This month's" usage={status.monthly} config={status.budget_config} />
    </article>
  );
}

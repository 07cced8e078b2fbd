import { LineChart, StackedBarChart } from "../../components/charts";
import { bucketLabel } from "./activity-range";
import { DECISION_LABELS, DECISIONS, type GovernanceActivity } from "./governance-types";

/** Decisions by outcome per bucket, stacked. */
export function DecisionsChart({ activity }: { activity: GovernanceActivity }) {
  const labels = activity.series.map((point) => bucketLabel(point.start, activity.bucket));
  const series = DECISIONS.map((decision) => ({
    name: DECISION_LABELS[decision],
    values: activity.series.map((point) => point.decisions[decision]),
  }));
  return <StackedBarChart title="Decisions over time" labels={labels} series={series} />;
}

/** Recorded cost per bucket. */
export function SpendChart({ activity }: { activity: GovernanceActivity }) {
  const labels = activity.series.map((point) => bucketLabel(point.start, activity.bucket));
  return (
    <LineChart
      title="Spend over time (USD)"
      labels={labels}
      series={[{ name: "Spend", values: activity.series.map((point) => point.spend_usd) }]}
    />
  );
}

/** The range's totals in one line, so the charts' scale has a reference. */
export function ActivityTotals({ activity }: { activity: GovernanceActivity }) {
  const sum = (read: (point: GovernanceActivity["series"][number]) => number) =>
    activity.series.reduce((total, point) => total + read(point), 0);
  const calls = sum((point) => point.invocations);
  const refused = sum(
    (point) => point.decisions.rate_limited + point.decisions.budget_exceeded + point.decisions.policy_denied,
  );
  return (
    <p className="governance-totals">
      <strong>{calls}</strong> {calls === 1 ? "call" : "calls"} · <strong>{refused}</strong> refused ·{" "}
      <strong>${sum((point) => point.spend_usd).toFixed(2)}</strong> spent
    </p>
  );
}

import { useState } from "react";
import { useLoader } from "../../api/hooks";
import { LineChart } from "../../components/charts";
import { SelectFilter } from "../../components/SelectFilter";
import { ResourceView } from "../../components/States";
import type { MetricPoint, MetricSeries } from "./managed-agent.types";

const RANGES = [
  { label: "Last 15 minutes", ms: 15 * 60_000, stepS: 15 },
  { label: "Last hour", ms: 3_600_000, stepS: 60 },
  { label: "Last 6 hours", ms: 6 * 3_600_000, stepS: 300 },
  { label: "Last 24 hours", ms: 24 * 3_600_000, stepS: 1800 },
] as const;
const RANGE_OPTIONS = RANGES.map((range, index) => ({ value: String(index), label: range.label }));

/**
 * How each built-in metric reads: counters are summed per bucket, levels averaged, and
 * memory (bytes) shown in MiB. An agent's custom metrics are averaged as they are.
 */
const METRICS: Record<string, { title: string; value: (point: MetricPoint) => number }> = {
  events_processed: { title: "Events processed", value: (point) => point.sum },
  errors: { title: "Errors", value: (point) => point.sum },
  processing_time_ms: { title: "Processing time (ms)", value: (point) => point.avg },
  cpu: { title: "CPU (% of one core)", value: (point) => point.avg },
  memory: { title: "Memory (MiB)", value: (point) => point.avg / 1_048_576 },
};
const ORDER = Object.keys(METRICS);

/** Charts of the metrics the agent reported, per time bucket; `revision` reloads them (a new heartbeat). */
export function MetricsPanel({ agentId, revision }: { agentId: string; revision: number }) {
  const [rangeIndex, setRangeIndex] = useState(1);
  const range = RANGES[rangeIndex] ?? RANGES[1];
  const metrics = useLoader(
    (api) =>
      api.get<MetricSeries>(`/agents/${encodeURIComponent(agentId)}/metrics`, {
        from: new Date(Date.now() - range.ms).toISOString(),
        step: range.stepS,
      }),
    [agentId, rangeIndex, revision],
  );
  return (
    <section className="panel" aria-labelledby="metrics-heading">
      <div className="managed-panel-head">
        <h2 id="metrics-heading" className="managed-panel-title">
          Metrics
        </h2>
        <div className="toolbar">
          <SelectFilter
            label="Range"
            options={RANGE_OPTIONS}
            value={String(rangeIndex)}
            onChange={(value) => setRangeIndex(Number(value))}
          />
          <button type="button" className="secondary" onClick={metrics.reload}>
            Refresh metrics
          </button>
        </div>
      </div>
      <ResourceView
        resource={metrics}
        isEmpty={(data) => data.series.length === 0}
        empty="No metrics reported in this range."
      >
        {(data) => (
          <div className="grid managed-metrics">
            {sortSeries(data.series).map((series) => (
              <MetricChart key={series.name} name={series.name} points={series.points} stepS={data.step} />
            ))}
          </div>
        )}
      </ResourceView>
    </section>
  );
}

function sortSeries(series: MetricSeries["series"]): MetricSeries["series"] {
  const rank = (name: string) => (ORDER.includes(name) ? ORDER.indexOf(name) : ORDER.length);
  return [...series].sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name));
}

function MetricChart({ name, points, stepS }: { name: string; points: MetricPoint[]; stepS: number }) {
  const metric = METRICS[name] ?? { title: name, value: (point: MetricPoint) => point.avg };
  const values = points.map(metric.value);
  const latest = values.at(-1) ?? 0;
  // Buckets without a report are left out by the API; each label names its bucket's time.
  const labels = points.map((point) =>
    new Date(point.t).toLocaleTimeString([], {
      hour: "2-digit",
      minute: "2-digit",
      ...(stepS < 60 ? { second: "2-digit" } : {}),
    }),
  );
  return (
    <div className="managed-metric">
      {points.length > 1 ? (
        <LineChart
          title={metric.title}
          labels={labels}
          series={[{ name: metric.title, values }]}
          height={160}
        />
      ) : (
        <p className="managed-metric-title">{metric.title}</p>
      )}
      <p className="managed-metric-latest">
        Latest: <strong>{formatValue(latest)}</strong>
        {points.length === 1 && " (one report so far: the chart starts at the second)"}
      </p>
    </div>
  );
}

function formatValue(value: number): string {
  return Number.isInteger(value)
    ? value.toLocaleString()
    : value.toLocaleString(undefined, { maximumFractionDigits: 2 });
}

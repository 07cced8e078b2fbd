/**
 * Small SVG charts: enough for usage over time and gauges, without a charting library's
 * weight. Each is a <figure> with a caption, and the SVG carries a text summary for
 * screen readers.
 */

import type { ReactNode } from "react";

const WIDTH = 640;
const PLOT_LEFT = 44;
const PLOT_BOTTOM = 22;

/** A categorical palette readable on white, in a fixed order so a series keeps its colour. */
export const SERIES_COLOURS = ["#2563eb", "#d97706", "#7c3aed", "#dc2626", "#0891b2", "#65a30d", "#db2777"];

function niceMax(value: number): number {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  const steps = [1, 2, 2.5, 5, 10];
  const step = steps.find((s) => s * magnitude >= value) ?? 10;
  return step * magnitude;
}

function formatTick(value: number): string {
  if (value >= 1000) return `${(value / 1000).toFixed(value % 1000 === 0 ? 0 : 1)}k`;
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

/** The colour of the `index`th series. */
function colour(index: number): string | undefined {
  return SERIES_COLOURS[index % SERIES_COLOURS.length];
}

/** How far up the plot `value` stands, in SVG units, on an axis from 0 to `max`. */
function scaleY(max: number, height: number): (value: number) => number {
  return (value) => (value / max) * (height - PLOT_BOTTOM - 8);
}

function YAxis({ max, height }: { max: number; height: number }) {
  const scale = scaleY(max, height);
  return (
    <g className="chart-axis">
      {[0, 0.5, 1].map((share) => {
        const y = height - PLOT_BOTTOM - scale(max * share);
        return (
          <g key={share}>
            <line x1={PLOT_LEFT} x2={WIDTH} y1={y} y2={y} />
            <text x={PLOT_LEFT - 6} y={y + 4} textAnchor="end">
              {formatTick(max * share)}
            </text>
          </g>
        );
      })}
    </g>
  );
}

export interface Series {
  name: string;
  values: number[];
}

interface ChartProps {
  title: string;
  labels: string[];
  series: Series[];
  height?: number;
}

/**
 * What every chart shares around its marks: the captioned figure, the SVG with its text
 * `summary` for screen readers, the y axis up to `max`, the x labels at `x`, the legend.
 */
function ChartFrame({
  title,
  summary,
  labels,
  series,
  height,
  max,
  x,
  children,
}: Required<ChartProps> & {
  summary: string;
  max: number;
  x: (index: number) => number;
  children: ReactNode;
}) {
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${WIDTH} ${height}`} role="img" aria-label={`${title}. ${summary}`}>
        <YAxis max={max} height={height} />
        {children}
        <XLabels labels={labels} x={x} height={height} />
      </svg>
      <Legend names={series.map((s) => s.name)} />
    </figure>
  );
}

/** Lines over shared x labels (time buckets, samples). */
export function LineChart({ title, labels, series, height = 200 }: ChartProps) {
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values)));
  const scale = scaleY(max, height);
  const x = (index: number) => PLOT_LEFT + (index * (WIDTH - PLOT_LEFT - 8)) / Math.max(1, labels.length - 1);
  const y = (value: number) => height - PLOT_BOTTOM - scale(value);
  const summary = series
    .map(
      (s) =>
        `${s.name}: latest ${formatTick(s.values.at(-1) ?? 0)}, peak ${formatTick(Math.max(0, ...s.values))}`,
    )
    .join("; ");
  return (
    <ChartFrame
      title={title}
      summary={summary}
      labels={labels}
      series={series}
      height={height}
      max={max}
      x={x}
    >
      {series.map((s, index) => (
        <polyline
          key={s.name}
          fill="none"
          stroke={colour(index)}
          strokeWidth={2}
          points={s.values.map((value, i) => `${x(i)},${y(value)}`).join(" ")}
        />
      ))}
    </ChartFrame>
  );
}

/** Bars per bucket, each split by key (decisions by outcome). */
export function StackedBarChart({ title, labels, series, height = 200 }: ChartProps) {
  const totals = labels.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const scale = scaleY(max, height);
  const slot = (WIDTH - PLOT_LEFT - 8) / Math.max(1, labels.length);
  const barWidth = Math.max(1, slot * 0.7);
  const summary = series
    .map((s) => `${s.name}: ${formatTick(s.values.reduce((a, b) => a + b, 0))}`)
    .join("; ");
  return (
    <ChartFrame
      title={title}
      summary={`Totals: ${summary}`}
      labels={labels}
      series={series}
      height={height}
      max={max}
      x={(i) => PLOT_LEFT + i * slot + slot / 2}
    >
      {labels.map((label, i) => {
        let top = height - PLOT_BOTTOM;
        return (
          <g key={label}>
            {series.map((s, index) => {
              const h = scale(s.values[i] ?? 0);
              top -= h;
              return h > 0 ? (
                <rect
                  key={s.name}
                  x={PLOT_LEFT + i * slot + (slot - barWidth) / 2}
                  y={top}
                  width={barWidth}
                  height={h}
                  fill={colour(index)}
                >
                  <title>{`${label} · ${s.name}: ${s.values[i]}`}</title>
                </rect>
              ) : null;
            })}
          </g>
        );
      })}
    </ChartFrame>
  );
}

function XLabels({ labels, x, height }: { labels: string[]; x: (index: number) => number; height: number }) {
  // At most about six labels, evenly spread, so they never overlap.
  const every = Math.max(1, Math.ceil(labels.length / 6));
  return (
    <g className="chart-axis">
      {labels.map((label, i) =>
        i % every === 0 ? (
          <text key={label} x={x(i)} y={height - 6} textAnchor="middle">
            {label}
          </text>
        ) : null,
      )}
    </g>
  );
}

function Legend({ names }: { names: string[] }) {
  if (names.length < 2) return null;
  return (
    <ul className="chart-legend">
      {names.map((name, index) => (
        <li key={name}>
          <span className="swatch" style={{ background: colour(index) }} />
          {name}
        </li>
      ))}
    </ul>
  );
}

/**
 * Used against a cap, with the thresholds where Steward warns and where it degrades the
 * agent drawn on the bar (each a share of the cap, 0–1).
 */
export function Gauge({
  label,
  used,
  cap,
  warnAt,
  degradeAt,
  unit = "",
}: {
  label: string;
  used: number;
  cap: number;
  warnAt?: number;
  degradeAt?: number;
  unit?: string;
}) {
  const share = cap > 0 ? Math.min(1, used / cap) : 0;
  const tone =
    degradeAt !== undefined && share >= degradeAt
      ? "bad"
      : warnAt !== undefined && share >= warnAt
        ? "warn"
        : "good";
  const text = `${unit}${used.toFixed(2)} of ${unit}${cap.toFixed(2)}`;
  return (
    <div className="gauge">
      <div className="gauge-label">
        <span>{label}</span>
        <span>{text}</span>
      </div>
      <meter className="visually-hidden" aria-label={label} min={0} max={cap} value={used}>
        {text}
      </meter>
      <div className="gauge-track" aria-hidden="true">
        <div className={`gauge-fill gauge-${tone}`} style={{ width: `${share * 100}%` }} />
        {warnAt !== undefined && <span className="gauge-mark" style={{ left: `${warnAt * 100}%` }} />}
        {degradeAt !== undefined && (
          <span className="gauge-mark gauge-mark-degrade" style={{ left: `${degradeAt * 100}%` }} />
        )}
      </div>
    </div>
  );
}

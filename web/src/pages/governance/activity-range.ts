import type { ActivityBucket } from "./governance-types";

/** The ranges the charts offer, each with the bucket that keeps it readable. */
export const RANGES = {
  hour: { label: "Last hour, by minute", bucket: "minute", buckets: 60 },
  day: { label: "Last 24 hours, by hour", bucket: "hour", buckets: 24 },
  month: { label: "Last 30 days, by day", bucket: "day", buckets: 30 },
} as const satisfies Record<string, { label: string; bucket: ActivityBucket; buckets: number }>;

export type RangeName = keyof typeof RANGES;

export function isRangeName(value: string | null): value is RangeName {
  return value !== null && Object.hasOwn(RANGES, value);
}

const BUCKET_MS: Record<ActivityBucket, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/**
 * The activity query for a range ending with the bucket that holds `now`. Aligning both
 * ends to whole buckets here (the server would widen them anyway) keeps the bucket count
 * exact, so no two bars of a chart share a label.
 */
export function activityQuery(range: RangeName, now: number) {
  const { bucket, buckets } = RANGES[range];
  const step = BUCKET_MS[bucket];
  const to = Math.floor(now / step) * step + step;
  return {
    bucket,
    from: new Date(to - buckets * step).toISOString(),
    to: new Date(to).toISOString(),
  };
}

const TIME = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
// Day buckets are UTC days, so they are named in UTC.
const DAY = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", timeZone: "UTC" });

/** The x-axis label of a bucket starting at `start`. */
export function bucketLabel(start: string, bucket: ActivityBucket): string {
  const date = new Date(start);
  return bucket === "day" ? DAY.format(date) : TIME.format(date);
}

/** How the agent screens write times, costs and durations. */

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function formatDateTime(iso: string | null): string {
  return iso ? dateTime.format(new Date(iso)) : "—";
}

/** Costs are small (fractions of a cent per call): four decimals keep them visible. */
export function formatCost(usd: number | null): string {
  return usd === null ? "—" : `$${usd.toFixed(4)}`;
}

export function formatDuration(ms: number | null): string {
  if (ms === null) return "—";
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** Words that plain capitalisation would spell wrong in a label. */
const SPELLING: Record<string, string> = { api: "API", hmac: "HMAC", http: "HTTP", id: "ID", url: "URL" };

/** "webhook_url" → "Webhook URL": a readable label for a config key the screen has no title for. */
export function humanize(key: string): string {
  const text = key
    .split("_")
    .map((word) => SPELLING[word] ?? word)
    .join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

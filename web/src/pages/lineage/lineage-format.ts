/** How lineage figures read on screen. */

export function formatCost(usd: number | null): string {
  if (usd === null) return "—";
  // Agent calls often cost fractions of a cent; two decimals would show them as free.
  return usd !== 0 && Math.abs(usd) < 0.01 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
}

export function formatDuration(ms: number | null): string {
  if (ms === null) return "—";
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

const TIME = new Intl.DateTimeFormat(undefined, {
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

/** A record's time, to the second: records of one trace are often seconds apart. */
export function formatTime(iso: string): string {
  return TIME.format(new Date(iso));
}

/** Who a record says the external user was: e-mail, else id. */
export function externalUserOf(record: { external_user: { id: string | null; email: string | null } }) {
  return record.external_user.email ?? record.external_user.id ?? "—";
}

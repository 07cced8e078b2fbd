import type { Connection } from "./agent-events";

const LABELS: Record<Connection, string> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  stopped: "Not live",
};

/** Whether live updates are flowing: the page's data may be stale while it reconnects. */
export function LiveIndicator({ connection }: { connection: Connection }) {
  return (
    <p className={`managed-live managed-live-${connection}`} role="status">
      <span className="managed-live-dot" aria-hidden="true" />
      {LABELS[connection]}
    </p>
  );
}

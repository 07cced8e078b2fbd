import { useEffect, useState } from "react";
import type { ManagedAgent } from "./managed-agent.types";

/** The current time, re-read every `everyMs`, so what is shown keeps ticking. */
export function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}

/** "42 s", "12 min 5 s", "3 h 12 min", "2 d 4 h". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

export function formatTime(iso: string): string {
  return new Date(iso).toLocaleString();
}

/** A registered agent's first beat marks it running a moment after the beat is recorded. */
const SAME_START_MS = 1000;

/**
 * Seconds the agent has been up at `now`, or null when it is not running. The uptime
 * the agent last reported counts when that beat came after the agent (re)started;
 * otherwise the time since Steward marked it running.
 */
export function uptimeSeconds(agent: ManagedAgent, now: number): number | null {
  if (agent.state !== "running") return null;
  const reported = agent.last_heartbeat?.uptime;
  const beatAt = agent.last_heartbeat_at ? Date.parse(agent.last_heartbeat_at) : Number.NaN;
  const startedAt = Date.parse(agent.state_changed_at);
  if (typeof reported === "number" && beatAt + SAME_START_MS >= startedAt)
    return reported + (now - beatAt) / 1000;
  return (now - startedAt) / 1000;
}

/** The agent's uptime, ticking every second. */
export function Uptime({ agent }: { agent: ManagedAgent }) {
  const now = useNow();
  const seconds = uptimeSeconds(agent, now);
  return <>{seconds === null ? "not running" : formatDuration(seconds)}</>;
}

/** "12 s ago", ticking, with the exact time on hover; `never` when there is no time. */
export function TimeAgo({ iso, never = "never" }: { iso: string | null; never?: string }) {
  const now = useNow();
  if (iso === null) return <>{never}</>;
  return (
    <time dateTime={iso} title={formatTime(iso)}>
      {formatDuration((now - Date.parse(iso)) / 1000)} ago
    </time>
  );
}

/** A platform may ask for a pause; one that asks for more than this gets this. */
const MAX_RETRY_AFTER_MS = 3_600_000;

/**
 * When to try a delivery again. `delaysMs` are the pauses between attempts (so a
 * schedule of two delays allows three attempts). Each pause gets up to 20% jitter so
 * a platform that recovers is not hit by every retry at once, and never ends before
 * the platform's own Retry-After.
 */
export function nextAttemptDelay(
  delaysMs: readonly number[],
  attemptsMade: number,
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number | null {
  const base = delaysMs[attemptsMade - 1];
  if (base === undefined) return null;
  const jittered = Math.round(base * (1 + 0.2 * random()));
  return Math.max(jittered, Math.min(retryAfterMs ?? 0, MAX_RETRY_AFTER_MS));
}

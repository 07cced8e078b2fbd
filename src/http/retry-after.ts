/**
 * A Retry-After header (seconds, or an HTTP date) as milliseconds from `nowMs`. Seconds
 * may carry a fraction: RFC 9110 says whole seconds, but Discord sends "1.5".
 */
export function retryAfterMs(value: string | string[] | undefined, nowMs: number): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.ceil(Number(text) * 1000);
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

const MAX_URL_LENGTH = 2048;

/** Why `value` is not an acceptable http(s) endpoint URL, or null when it is. */
export function httpUrlProblem(value: string): string | null {
  if (value.length > MAX_URL_LENGTH) return `must be at most ${MAX_URL_LENGTH} characters`;
  // The URL parser silently drops these, but the raw string is what would be stored and called.
  if (
    /\s/.test(value) ||
    [...value].some((char) => char.charCodeAt(0) < 0x20 || char.charCodeAt(0) === 0x7f)
  ) {
    return "must not contain whitespace or control characters";
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "must be an absolute http or https URL";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return "must use the http or https scheme";
  if (!url.hostname) return "must name a host";
  if (url.username || url.password) return "must not contain credentials; use auth_config instead";
  return null;
}

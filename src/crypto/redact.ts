/** Path segments and query values this long in a secret URL are taken to be tokens. */
const MIN_TOKEN_LENGTH = 16;
const MIN_FRAGMENT_LENGTH = 8;

/**
 * `text` without any credential in it. Agents and platforms sometimes echo parts of a
 * request; a webhook URL is a credential whole, by its path, and by each token in it.
 */
export function redact(text: string, secrets: readonly string[]): string {
  return replaceAll(text, fragmentsFor(secrets));
}

/** Every spelling of the secrets to look for, longest first (so no shorter one splits a longer one). */
function fragmentsFor(secrets: readonly string[]): string[] {
  const fragments = secrets.filter((secret) => secret !== "").flatMap(fragmentsOf);
  return fragments.sort((a, b) => b.length - a.length);
}

function replaceAll(text: string, fragments: readonly string[]): string {
  let redacted = text;
  for (const fragment of fragments) redacted = redacted.replaceAll(fragment, "[redacted]");
  return redacted;
}

function fragmentsOf(secret: string): string[] {
  const derived = [encodeURIComponent(secret)];
  if (URL.canParse(secret)) {
    const url = new URL(secret);
    const tokens = [...url.pathname.split("/"), ...url.searchParams.values()];
    derived.push(url.pathname + url.search, ...tokens.filter((token) => token.length >= MIN_TOKEN_LENGTH));
  }
  // Short derived pieces ("/", "/hook") are not secret and would garble every quote.
  return [secret, ...derived.filter((fragment) => fragment.length >= MIN_FRAGMENT_LENGTH)];
}

/** `value` with `redact` applied to every string in it, keys included. */
export function redactDeep<T>(value: T, secrets: readonly string[]): T {
  // Called on every agent answer: nothing to look for, nothing to copy.
  if (secrets.length === 0) return value;
  const fragments = fragmentsFor(secrets);
  const walk = (item: unknown): unknown => {
    if (typeof item === "string") return replaceAll(item, fragments);
    if (Array.isArray(item)) return item.map(walk);
    if (item !== null && typeof item === "object")
      return Object.fromEntries(
        Object.entries(item).map(([key, inner]) => [replaceAll(key, fragments), walk(inner)]),
      );
    return item;
  };
  return walk(value) as T;
}

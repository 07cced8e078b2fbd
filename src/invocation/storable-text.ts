/**
 * PostgreSQL text and jsonb hold neither U+0000 nor unpaired surrogates. Text from
 * outside (request bodies, agent answers, error messages) is stored with those replaced
 * by U+FFFD rather than failing the write — and hashed for lineage in that same form.
 */
export function storableText<T>(value: T): T {
  if (typeof value === "string") return value.toWellFormed().replaceAll("\u0000", "\uFFFD") as T;
  if (Array.isArray(value)) return value.map(storableText) as T;
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [storableText(key), storableText(item)]),
    ) as T;
  }
  return value;
}

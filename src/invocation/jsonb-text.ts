/**
 * PostgreSQL text and jsonb cannot hold U+0000. Text from outside (request bodies,
 * agent answers, error messages) is stored with it replaced by U+FFFD rather than
 * failing the write.
 */
export function withoutNulCharacters<T>(value: T): T {
  if (typeof value === "string") return value.replaceAll("\u0000", "\uFFFD") as T;
  if (Array.isArray(value)) return value.map(withoutNulCharacters) as T;
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [withoutNulCharacters(key), withoutNulCharacters(item)]),
    ) as T;
  }
  return value;
}

import { Format } from "typebox/format";

/**
 * Makes the `date-time` format mean what Steward can store: RFC 3339, as TypeBox checks it,
 * but not in the year 0000, which RFC 3339 allows and PostgreSQL refuses — it would fail
 * at the database instead of naming its field. The registry is the process's, so this
 * holds for every schema checked in it (HTTP and NATS alike).
 */
export function registerDateTimeFormat(): void {
  Format.Set("date-time", (value) => Format.IsDateTime(value) && !value.startsWith("0000"));
}

import { type SQL, sql } from "drizzle-orm";
import type { PgColumn } from "drizzle-orm/pg-core";

const WORD = /^[a-z_]+$/;

/**
 * `column IN ('a', 'b')` with the values written into the statement rather than bound.
 * For queries a partial index serves: once a named statement switches to a generic plan,
 * PostgreSQL cannot prove a partial index's predicate from bound values. Only fixed words
 * of the code (statuses) are accepted, never input.
 */
export function literalIn(column: PgColumn, values: readonly string[]): SQL {
  for (const value of values) {
    if (!WORD.test(value))
      throw new Error(`literalIn takes fixed lower-case words, not ${JSON.stringify(value)}`);
  }
  return sql`${column} IN (${sql.raw(values.map((value) => `'${value}'`).join(", "))})`;
}

import { count, type InferSelectModel, type SQL } from "drizzle-orm";
import type { PgColumn, PgTable } from "drizzle-orm/pg-core";
import { type Page, type PageRequest, toPage } from "../http/pagination.js";
import type { DbOrTx } from "./database.js";

/**
 * One page of a table's rows matching `where`, in `order`, and how many match in all —
 * the query behind every list endpoint. (The two queries run side by side; on the
 * embedded store they simply queue on its one connection.)
 */
export async function selectRows<T extends PgTable>(
  db: DbOrTx,
  table: T,
  where: SQL | undefined,
  order: Array<SQL | PgColumn>,
  page: PageRequest,
): Promise<{ rows: InferSelectModel<T>[]; total: number }> {
  const source = table as PgTable;
  const [rows, [totals]] = await Promise.all([
    db
      .select()
      .from(source)
      .where(where)
      .orderBy(...order)
      .limit(page.limit)
      .offset(page.offset),
    db.select({ total: count() }).from(source).where(where),
  ]);
  return { rows: rows as InferSelectModel<T>[], total: totals?.total ?? 0 };
}

/** The same page with each row turned into its API view. */
export async function selectPage<T extends PgTable, View>(
  db: DbOrTx,
  table: T,
  where: SQL | undefined,
  order: Array<SQL | PgColumn>,
  page: PageRequest,
  view: (row: InferSelectModel<T>) => View,
): Promise<Page<View>> {
  const { rows, total } = await selectRows(db, table, where, order, page);
  return toPage(rows.map(view), total, page);
}

import type { InvocationRow } from "../db/schema.js";
import { toLineageRecord } from "./lineage-view.js";

export type ExportFormat = "json" | "jsonl" | "csv";

export const EXPORT_CONTENT_TYPES: Record<ExportFormat, string> = {
  json: "application/json; charset=utf-8",
  jsonl: "application/x-ndjson; charset=utf-8",
  csv: "text/csv; charset=utf-8",
};

const CSV_COLUMNS: Array<[string, (row: InvocationRow) => unknown]> = [
  ["invocation_id", (row) => row.id],
  ["created_at", (row) => row.createdAt.toISOString()],
  ["completed_at", (row) => row.completedAt?.toISOString()],
  ["status", (row) => row.status],
  ["external_user_id", (row) => row.externalUserId],
  ["external_user_email", (row) => row.externalUserEmail],
  ["external_system", (row) => row.externalSystem],
  ["credential_id", (row) => row.principalId],
  ["api_key_prefix", (row) => row.apiKeyPrefix],
  ["agent_id", (row) => row.externalAgentId],
  ["agent_name", (row) => row.agentName],
  ["trace_id", (row) => row.traceId],
  ["span_id", (row) => row.spanId],
  ["parent_invocation_id", (row) => row.parentInvocationId],
  ["response_status", (row) => row.responseStatus],
  ["duration_ms", (row) => row.durationMs],
  ["cost_usd", (row) => row.costUsd],
  ["degraded", (row) => row.degraded],
  ["error", (row) => row.errorMessage],
  ["record_hash", (row) => row.recordHash],
];

/** A CSV cell, quoted when needed, and defused when a spreadsheet would read it as a formula. */
function csvCell(value: unknown): string {
  if (value === null || value === undefined) return "";
  let text = String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** Streams records in the requested format, one chunk per record. */
export async function* exportRecords(
  rows: AsyncIterable<InvocationRow>,
  format: ExportFormat,
): AsyncGenerator<string> {
  if (format === "csv") {
    yield `${CSV_COLUMNS.map(([name]) => name).join(",")}\r\n`;
    for await (const row of rows) yield `${CSV_COLUMNS.map(([, read]) => csvCell(read(row))).join(",")}\r\n`;
    return;
  }
  if (format === "jsonl") {
    for await (const row of rows) yield `${JSON.stringify(toLineageRecord(row))}\n`;
    return;
  }
  let first = true;
  yield "[";
  for await (const row of rows) {
    yield `${first ? "" : ","}\n${JSON.stringify(toLineageRecord(row))}`;
    first = false;
  }
  yield "\n]\n";
}

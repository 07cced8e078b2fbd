/** The lineage answers these screens read, as src/lineage/lineage.routes.ts and lineage-view.ts declare them. */

/** One invocation record (GET /lineage, GET /lineage/{invocation_id}). */
export interface LineageRecord {
  invocation_id: string;
  organization_id: string;
  status: string;
  external_user: { id: string | null; email: string | null; name: string | null; role: string | null };
  external_system: {
    system: string | null;
    session_id: string | null;
    trace_id: string | null;
    context: unknown;
  };
  credential: {
    type: string;
    id: string;
    api_key_prefix: string | null;
    organization_id: string;
    team: string | null;
  };
  agent: { id: string; name: string; endpoint: string; version: number };
  trace: {
    trace_id: string;
    span_id: string;
    parent_span_id: string | null;
    parent_invocation_id: string | null;
  };
  error: string | null;
  duration_ms: number | null;
  estimated_cost: number;
  cost_usd: number | null;
  degraded: boolean;
  created_at: string;
  completed_at: string | null;
  chain: { seq: number | null; prev_hash: string | null; record_hash: string | null };
  redacted_at: string | null;
}

/** GET /lineage/verify. */
export interface ChainVerification {
  valid: boolean;
  checked: number;
  first_broken: { invocation_id: string | null; chain_seq: number; reason: string } | null;
}

export type GraphNodeType = "external_user" | "external_system" | "credential" | "agent";

/** GET /lineage/graph. */
export interface LineageGraph {
  nodes: Array<{ id: string; type: GraphNodeType; label: string }>;
  edges: Array<{ from: string; to: string; invocations: number; cost_usd: number; duration_ms: number }>;
}

/** The statuses a record can have (docs/lineage.md), for the status filter. */
export const RECORD_STATUSES = [
  "success",
  "failure",
  "timeout",
  "error",
  "running",
  "policy_denied",
  "rate_limited",
  "budget_exceeded",
  "pending_approval",
  "approval_rejected",
  "approval_expired",
] as const;

export const EXPORT_FORMATS = [
  { format: "json", label: "JSON" },
  { format: "jsonl", label: "JSON Lines" },
  { format: "csv", label: "CSV" },
] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number]["format"];

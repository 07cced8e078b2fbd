-- The abandoned-call sweep looks, across organizations, for calls still open: running
-- ones, and ones held for an approval already decided. Without these indexes each pass
-- read the whole invocations table; unfinished calls are few, so this index stays small.
CREATE INDEX invocations_unfinished_idx ON invocations (created_at)
  WHERE status IN ('running', 'pending_approval');
-- The approval of each held call the sweep finds, to see whether it was decided.
CREATE INDEX approvals_invocation_idx ON approvals (invocation_id);

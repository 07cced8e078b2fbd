-- Background passes look across organizations for the few rows still open; without
-- these indexes each pass read a whole table that only grows. IF NOT EXISTS: on a large
-- table, operators build them CONCURRENTLY before upgrading (docs/operations.md).

-- The abandoned-call sweep: running calls, and calls held for an approval since decided.
CREATE INDEX IF NOT EXISTS invocations_unfinished_idx ON invocations (created_at)
  WHERE status IN ('running', 'pending_approval');
-- The approval of each held call the sweep finds, to see whether it was decided.
CREATE INDEX IF NOT EXISTS approvals_invocation_idx ON approvals (invocation_id);
-- The lost-job sweep, and the jobs an embedded process picks up again at start. Not on
-- lease_until: running jobs renew it often, and an index on it would stop PostgreSQL
-- from updating those rows in place.
CREATE INDEX IF NOT EXISTS jobs_unfinished_idx ON jobs (status) WHERE status IN ('queued', 'running');

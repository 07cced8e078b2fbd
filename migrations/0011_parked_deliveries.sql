-- Parked deliveries: the waiting rows of a paused endpoint keep a next_attempt_at in the
-- past, so in the due index they sat in front of every other row and each claim, on
-- every replica, read through all of them (a paused backlog of 20k rows cost about 9 ms
-- a claim, growing with the backlog). A claim now parks them: they leave the due index
-- and wait in their own, until the pause is lifted and they are unparked. Their status
-- stays pending or failed.
-- A column with a constant default is added without rewriting the table.
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS parked boolean NOT NULL DEFAULT false;

-- The claims' new index. deliveries_due_idx stays while the release before this one may
-- still be running (its claims do not say NOT parked); a later release drops it.
-- IF NOT EXISTS: on a large table, operators build these indexes CONCURRENTLY before
-- upgrading (docs/operations.md, "Upgrades and migrations").
CREATE INDEX IF NOT EXISTS deliveries_due_unparked_idx ON deliveries (next_attempt_at)
  WHERE status IN ('pending', 'failed') AND NOT parked;

-- Unparking goes by endpoint (a redelivery lifts one endpoint's pause), so this index is
-- on the endpoint key rather than on next_attempt_at: the expression is ENDPOINT_KEY of
-- src/delivery/endpoint-key.ts, which the planner must find unchanged to use the index.
CREATE INDEX IF NOT EXISTS deliveries_parked_idx ON deliveries ((CASE target WHEN 'platform' THEN 'agent:' || external_agent_id
  WHEN 'webhook' THEN 'webhook:' || subscription_id ELSE 'callback:' || invocation_id END))
  WHERE parked;

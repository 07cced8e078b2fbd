-- Parked deliveries: the waiting rows of a paused endpoint keep a next_attempt_at in the
-- past, so in the due index they sat in front of every other row and each claim, on
-- every replica, read through all of them (a paused backlog of 20k rows cost 7.6 ms a
-- claim, growing with the backlog). A claim now parks them: they leave the due index
-- and wait in their own, until the pause is lifted and they are unparked. Their status
-- stays pending or failed.
ALTER TABLE deliveries ADD COLUMN parked boolean NOT NULL DEFAULT false;

DROP INDEX deliveries_due_idx;
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at)
  WHERE status IN ('pending', 'failed') AND NOT parked;

-- Unparking goes by endpoint (a redelivery lifts one endpoint's pause), so this index is
-- on the endpoint key rather than on next_attempt_at: the expression is ENDPOINT_KEY of
-- src/delivery/endpoint-key.ts, which the planner must find unchanged to use the index.
CREATE INDEX deliveries_parked_idx ON deliveries ((CASE target WHEN 'platform' THEN 'agent:' || external_agent_id
  WHEN 'webhook' THEN 'webhook:' || subscription_id ELSE 'callback:' || invocation_id END))
  WHERE parked;

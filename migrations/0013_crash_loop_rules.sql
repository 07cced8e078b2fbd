-- Alert rules of kind crash_loop: they fire nothing themselves (Steward raises crash-loop
-- alerts when an agent process keeps crashing) but route those alerts to a chat channel.
ALTER TABLE agent_alert_rules DROP CONSTRAINT IF EXISTS agent_alert_rules_kind_check;
ALTER TABLE agent_alert_rules ADD CONSTRAINT agent_alert_rules_kind_check
  CHECK (kind IN ('missed_heartbeats', 'error_rate', 'metric_threshold', 'crash_loop'));

-- Managed agents: processes an organization runs itself, which Steward discovers,
-- registers, configures, starts and watches (heartbeats, metrics, logs, alerts).

CREATE TABLE managed_agents (
  -- "{type}-{uuid}"
  id                   text PRIMARY KEY,
  organization_id      text NOT NULL REFERENCES organizations (id),
  name                 text NOT NULL,
  version              text NOT NULL,
  description          text NOT NULL DEFAULT '',
  type                 text NOT NULL,
  tags                 text[] NOT NULL DEFAULT '{}',
  subscribed_topics    text[] NOT NULL,
  findings_topic       text NOT NULL,
  -- How the process manager starts it, in package_dir; null: it runs elsewhere.
  command              text,
  package_dir          text,
  resource_hints       jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- JSON Schema its stored config must match; null: any object.
  config_schema        jsonb,
  config_defaults      jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- Highest entry in managed_agent_config_versions; 0: none stored yet.
  config_version       integer NOT NULL DEFAULT 0,
  runtime_overrides    jsonb NOT NULL DEFAULT '{}'::jsonb,
  state                text NOT NULL,
  -- Missed heartbeats count from the later of the last beat and this.
  state_changed_at     timestamptz NOT NULL DEFAULT now(),
  health               text NOT NULL DEFAULT 'unknown',
  heartbeat_interval_s integer NOT NULL DEFAULT 30,
  last_heartbeat_at    timestamptz,
  -- The agent's own words in its last beat: {status, uptime, timestamp}.
  last_heartbeat       jsonb,
  -- Bumped to revoke every token issued so far.
  token_generation     integer NOT NULL DEFAULT 0,
  created_by           text,
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  deleted_at           timestamptz,
  CONSTRAINT managed_agents_state_check
    CHECK (state IN ('discovered', 'registered', 'running', 'stopped', 'failed', 'deleted')),
  CONSTRAINT managed_agents_health_check CHECK (health IN ('unknown', 'healthy', 'unhealthy'))
);
-- One agent per package (name and version) in an organization.
CREATE UNIQUE INDEX managed_agents_package_key ON managed_agents (organization_id, name, version)
  WHERE state <> 'deleted';
CREATE INDEX managed_agents_organization_idx ON managed_agents (organization_id, state, id);
CREATE INDEX managed_agents_heartbeat_due_idx ON managed_agents (last_heartbeat_at) WHERE state = 'running';

CREATE TABLE managed_agent_transitions (
  id              bigserial PRIMARY KEY,
  agent_id        text NOT NULL REFERENCES managed_agents (id),
  organization_id text NOT NULL REFERENCES organizations (id),
  -- Null for the state an agent was created in.
  from_state      text,
  to_state        text NOT NULL,
  reason          text,
  actor_type      text NOT NULL,
  actor_id        text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX managed_agent_transitions_agent_idx ON managed_agent_transitions (agent_id, id);

CREATE TABLE managed_agent_config_versions (
  agent_id        text NOT NULL REFERENCES managed_agents (id),
  organization_id text NOT NULL REFERENCES organizations (id),
  version         integer NOT NULL,
  config          jsonb NOT NULL,
  author_type     text NOT NULL,
  author_id       text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (agent_id, version)
);

CREATE TABLE agent_discovery_tokens (
  id               text PRIMARY KEY,
  organization_id  text NOT NULL REFERENCES organizations (id),
  token_hash       text NOT NULL UNIQUE,
  expires_at       timestamptz NOT NULL,
  used_at          timestamptz,
  used_by_agent_id text,
  created_by       text,
  created_at       timestamptz NOT NULL DEFAULT now()
);

-- The last scan of the agents directory for each organization, with its refusals.
CREATE TABLE agent_discovery_reports (
  organization_id text PRIMARY KEY REFERENCES organizations (id),
  directory       text NOT NULL,
  scanned_at      timestamptz NOT NULL,
  report          jsonb NOT NULL
);

CREATE TABLE managed_agent_metrics (
  agent_id        text NOT NULL REFERENCES managed_agents (id),
  organization_id text NOT NULL REFERENCES organizations (id),
  name            text NOT NULL,
  value           double precision NOT NULL,
  recorded_at     timestamptz NOT NULL
);
CREATE INDEX managed_agent_metrics_series_idx ON managed_agent_metrics (agent_id, name, recorded_at);
CREATE INDEX managed_agent_metrics_age_idx ON managed_agent_metrics (recorded_at);

CREATE TABLE managed_agent_logs (
  id              bigserial PRIMARY KEY,
  agent_id        text NOT NULL REFERENCES managed_agents (id),
  organization_id text NOT NULL REFERENCES organizations (id),
  level           text NOT NULL,
  message         text NOT NULL,
  context         jsonb NOT NULL DEFAULT '{}'::jsonb,
  logged_at       timestamptz NOT NULL,
  CONSTRAINT managed_agent_logs_level_check CHECK (level IN ('trace', 'debug', 'info', 'warn', 'error', 'fatal'))
);
CREATE INDEX managed_agent_logs_agent_idx ON managed_agent_logs (agent_id, logged_at, id);
CREATE INDEX managed_agent_logs_age_idx ON managed_agent_logs (logged_at);

CREATE TABLE agent_alert_rules (
  id               text PRIMARY KEY,
  organization_id  text NOT NULL REFERENCES organizations (id),
  name             text NOT NULL,
  enabled          boolean NOT NULL DEFAULT true,
  -- Null: every managed agent of the organization.
  agent_id         text REFERENCES managed_agents (id),
  kind             text NOT NULL,
  metric           text,
  threshold        double precision NOT NULL,
  window_s         integer NOT NULL DEFAULT 300,
  -- An external agent whose chat platform receives the alert; null: recorded and announced only.
  notify_external_agent_id text REFERENCES external_agents (id),
  created_by       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT agent_alert_rules_kind_check CHECK (kind IN ('missed_heartbeats', 'error_rate', 'metric_threshold')),
  CONSTRAINT agent_alert_rules_organization_name_key UNIQUE (organization_id, name)
);

CREATE TABLE agent_alerts (
  id              text PRIMARY KEY,
  organization_id text NOT NULL REFERENCES organizations (id),
  agent_id        text NOT NULL REFERENCES managed_agents (id),
  -- Null for Steward's own heartbeat alert.
  rule_id         text REFERENCES agent_alert_rules (id),
  kind            text NOT NULL,
  message         text NOT NULL,
  details         jsonb NOT NULL DEFAULT '{}'::jsonb,
  fired_at        timestamptz NOT NULL DEFAULT now(),
  resolved_at     timestamptz
);
-- One open alert per rule (or built-in kind) and agent.
CREATE UNIQUE INDEX agent_alerts_open_key ON agent_alerts (agent_id, kind, coalesce(rule_id, ''))
  WHERE resolved_at IS NULL;
CREATE INDEX agent_alerts_organization_idx ON agent_alerts (organization_id, id);

-- Governed invocation: organization governance settings, policies, budget usage,
-- invocations (which are also the hash-chained lineage records) and chain heads.

ALTER TABLE organizations
  ADD COLUMN policy_combining     text  NOT NULL DEFAULT 'deny_overrides',
  ADD COLUMN rate_limit_defaults  jsonb NOT NULL DEFAULT '{}'::jsonb,
  ADD COLUMN budget_config        jsonb NOT NULL DEFAULT '{}'::jsonb,
  ADD CONSTRAINT organizations_policy_combining_check
    CHECK (policy_combining IN ('deny_overrides', 'allow_overrides', 'first_match'));

CREATE TABLE policies (
  id               text PRIMARY KEY,
  organization_id  text NOT NULL REFERENCES organizations (id),
  name             text NOT NULL,
  description      text,
  effect           text NOT NULL,
  priority         integer NOT NULL DEFAULT 0,
  enabled          boolean NOT NULL DEFAULT true,
  conditions       jsonb NOT NULL DEFAULT '[]'::jsonb,
  cedar            text,
  created_by       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT policies_effect_check CHECK (effect IN ('allow', 'deny')),
  CONSTRAINT policies_organization_name_key UNIQUE (organization_id, name)
);
CREATE INDEX policies_organization_idx ON policies (organization_id, enabled, priority DESC, id);

-- Spend per agent or organization and UTC day or month. `reserved` holds the estimates
-- of calls in flight; a call moves its reservation into `spent` when it settles.
CREATE TABLE budget_usage (
  organization_id          text NOT NULL REFERENCES organizations (id),
  scope                    text NOT NULL,
  scope_id                 text NOT NULL,
  period                   text NOT NULL,
  period_start             date NOT NULL,
  spent                    numeric(20, 6) NOT NULL DEFAULT 0,
  reserved                 numeric(20, 6) NOT NULL DEFAULT 0,
  invocations              integer NOT NULL DEFAULT 0,
  warning_notified_at      timestamptz,
  degradation_notified_at  timestamptz,
  PRIMARY KEY (scope, scope_id, period, period_start),
  CONSTRAINT budget_usage_scope_check CHECK (scope IN ('agent', 'organization')),
  CONSTRAINT budget_usage_period_check CHECK (period IN ('day', 'month'))
);
CREATE INDEX budget_usage_organization_idx ON budget_usage (organization_id, period_start);

-- One row per call. Once final, a row takes the next place in its organization's hash
-- chain (chain_seq, prev_hash, record_hash) and its hashed content never changes again,
-- except by a recorded GDPR redaction, which keeps the component hashes.
CREATE TABLE invocations (
  id                    text PRIMARY KEY,
  organization_id       text NOT NULL REFERENCES organizations (id),
  external_agent_id     text NOT NULL REFERENCES external_agents (id),
  status                text NOT NULL,
  idempotency_key       text,
  -- (1) external user
  external_user_id      text,
  external_user_email   text,
  external_user_name    text,
  external_user_role    text,
  -- (2) external system
  external_system       text,
  external_session_id   text,
  external_trace_id     text,
  external_context      jsonb,
  -- (3) Steward credential
  principal_type        text NOT NULL,
  principal_id          text NOT NULL,
  api_key_prefix        text,
  team                  text,
  -- (4) agent, as it was at the call
  agent_name            text NOT NULL,
  agent_endpoint        text NOT NULL,
  agent_version         integer NOT NULL,
  -- (5) the invocation itself
  trace_id              text NOT NULL,
  span_id               text NOT NULL,
  parent_span_id        text,
  parent_invocation_id  text,
  request_ip            text,
  user_agent            text,
  request_body          jsonb,
  response_status       integer,
  response_body         jsonb,
  error_message         text,
  duration_ms           integer,
  estimated_cost        numeric(20, 6) NOT NULL DEFAULT 0,
  reserved_cost         numeric(20, 6) NOT NULL DEFAULT 0,
  cost_usd              numeric(20, 6),
  degraded              boolean NOT NULL DEFAULT false,
  degraded_reasons      text[] NOT NULL DEFAULT '{}',
  governance            jsonb NOT NULL DEFAULT '{}'::jsonb,
  policy_ids            text[] NOT NULL DEFAULT '{}',
  created_at            timestamptz NOT NULL DEFAULT now(),
  completed_at          timestamptz,
  -- hash chain
  chain_seq             bigint,
  prev_hash             text,
  record_hash           text,
  identity_hash         text,
  body_hash             text,
  redacted_at           timestamptz,
  CONSTRAINT invocations_status_check CHECK (status IN (
    'running', 'success', 'failure', 'timeout', 'rate_limited', 'budget_exceeded',
    'policy_denied', 'pending_approval'))
);
CREATE UNIQUE INDEX invocations_idempotency_key ON invocations (organization_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX invocations_chain_key ON invocations (organization_id, chain_seq)
  WHERE chain_seq IS NOT NULL;
CREATE INDEX invocations_organization_idx ON invocations (organization_id, id);
CREATE INDEX invocations_agent_idx ON invocations (organization_id, external_agent_id, id);
CREATE INDEX invocations_status_idx ON invocations (organization_id, status, id);
CREATE INDEX invocations_external_user_idx ON invocations (organization_id, external_user_id);
-- Emails are matched without regard to case (GDPR requests rarely match the stored case).
CREATE INDEX invocations_external_email_idx ON invocations (organization_id, lower(external_user_email));
CREATE INDEX invocations_external_system_idx ON invocations (organization_id, external_system);
CREATE INDEX invocations_trace_idx ON invocations (organization_id, trace_id);
CREATE INDEX invocations_parent_idx ON invocations (parent_invocation_id) WHERE parent_invocation_id IS NOT NULL;

CREATE TABLE lineage_chain_heads (
  organization_id  text PRIMARY KEY REFERENCES organizations (id),
  last_seq         bigint NOT NULL,
  last_hash        text NOT NULL
);

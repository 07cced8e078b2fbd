-- Approval workflows: rules on agents and organizations, approval requests, decisions.

ALTER TABLE external_agents ADD COLUMN approval_config jsonb;

CREATE TABLE approval_rules (
  id                 text PRIMARY KEY,
  organization_id    text NOT NULL REFERENCES organizations (id),
  name               text NOT NULL,
  enabled            boolean NOT NULL DEFAULT true,
  -- Empty: the rule applies to every agent of the organization.
  external_agent_ids text[] NOT NULL DEFAULT '{}',
  triggers           jsonb NOT NULL,
  workflow           jsonb NOT NULL DEFAULT '{}'::jsonb,
  trusted_users      text[] NOT NULL DEFAULT '{}',
  created_by         text,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT approval_rules_organization_name_key UNIQUE (organization_id, name)
);
CREATE INDEX approval_rules_organization_idx ON approval_rules (organization_id, enabled, id);

CREATE TABLE approvals (
  id                      text PRIMARY KEY,
  organization_id         text NOT NULL REFERENCES organizations (id),
  invocation_id           text NOT NULL REFERENCES invocations (id),
  external_agent_id       text NOT NULL REFERENCES external_agents (id),
  status                  text NOT NULL DEFAULT 'pending',
  reasons                 text[] NOT NULL,
  fingerprint             text NOT NULL,
  summary                 text NOT NULL,
  requester_principal_id  text NOT NULL,
  requester_roles         text[] NOT NULL,
  requester_external_user text,
  workflow                jsonb NOT NULL,
  required_approvals      integer NOT NULL,
  expires_at              timestamptz NOT NULL,
  -- From escalate_at on, the workflow's escalation_to may decide too.
  escalate_at             timestamptz,
  escalated_at            timestamptz,
  -- When approvers are next to be written to (the request, then reminders); null: never.
  notify_at               timestamptz,
  notifications_sent      integer NOT NULL DEFAULT 0,
  decided_at              timestamptz,
  decision_reason         text,
  created_at              timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT approvals_status_check CHECK (status IN ('pending', 'approved', 'rejected', 'expired'))
);
-- One pending request per identical call: asking again returns the pending one.
CREATE UNIQUE INDEX approvals_pending_fingerprint_key ON approvals (organization_id, fingerprint) WHERE status = 'pending';
CREATE INDEX approvals_organization_idx ON approvals (organization_id, status, id);
CREATE INDEX approvals_agent_idx ON approvals (organization_id, external_agent_id, status, id);
CREATE INDEX approvals_due_idx ON approvals (expires_at) WHERE status = 'pending';
CREATE INDEX approvals_notify_due_idx ON approvals (notify_at) WHERE status = 'pending';
CREATE INDEX approvals_escalation_due_idx ON approvals (escalate_at)
  WHERE status = 'pending' AND escalated_at IS NULL;

CREATE TABLE approval_decisions (
  approval_id  text NOT NULL REFERENCES approvals (id),
  approver_id  text NOT NULL,
  decision     text NOT NULL,
  reason       text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (approval_id, approver_id),
  CONSTRAINT approval_decisions_decision_check CHECK (decision IN ('approve', 'reject'))
);

-- A call that waited for approval and was turned down, or ran out of time, ends so;
-- one that Steward itself could not complete (its database, its rate limiter) is 'error'.
ALTER TABLE invocations DROP CONSTRAINT invocations_status_check;
ALTER TABLE invocations ADD CONSTRAINT invocations_status_check CHECK (status IN (
  'running', 'success', 'failure', 'timeout', 'rate_limited', 'budget_exceeded',
  'policy_denied', 'pending_approval', 'approval_rejected', 'approval_expired', 'error'));

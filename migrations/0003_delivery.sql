-- Reliable delivery: a transactional outbox of deliveries (results to the agent's chat
-- platform, events to organization webhook subscriptions), their attempt log, endpoint
-- health, and the subscriptions themselves.

CREATE TABLE webhook_subscriptions (
  id                    text PRIMARY KEY,
  organization_id       text NOT NULL REFERENCES organizations (id),
  url                   text NOT NULL,
  events                text[] NOT NULL,
  description           text,
  -- Sealed like agent credentials; during a rotation the previous secret signs too.
  secret                jsonb NOT NULL,
  previous_secret       jsonb,
  previous_secret_until timestamptz,
  active                boolean NOT NULL DEFAULT true,
  created_by            text,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_subscriptions_organization_idx ON webhook_subscriptions (organization_id, active, id);

CREATE TABLE deliveries (
  id                 text PRIMARY KEY,
  organization_id    text NOT NULL REFERENCES organizations (id),
  -- 'platform': an invocation's result to its agent's platform; 'webhook': an event to a
  -- subscription; 'callback': a held call's result to the callback_url given at invoke.
  target             text NOT NULL,
  event_type         text NOT NULL,
  external_agent_id  text REFERENCES external_agents (id),
  invocation_id      text,
  subscription_id    text REFERENCES webhook_subscriptions (id),
  platform           text,
  -- The event for webhook deliveries; platform deliveries are formatted when sent.
  payload            jsonb,
  status             text NOT NULL DEFAULT 'pending',
  attempts           integer NOT NULL DEFAULT 0,
  next_attempt_at    timestamptz NOT NULL DEFAULT now(),
  lease_until        timestamptz,
  last_status_code   integer,
  last_error         text,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  delivered_at       timestamptz,
  CONSTRAINT deliveries_target_check CHECK (target IN ('platform', 'webhook', 'callback')),
  CONSTRAINT deliveries_status_check CHECK (status IN ('pending', 'delivering', 'delivered', 'failed', 'dead'))
);
-- What the workers poll: due rows, and rows whose worker's lease ran out.
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE status IN ('pending', 'failed');
CREATE INDEX deliveries_lease_idx ON deliveries (lease_until) WHERE status = 'delivering';
CREATE INDEX deliveries_organization_idx ON deliveries (organization_id, id);
CREATE INDEX deliveries_agent_idx ON deliveries (organization_id, external_agent_id, id);
CREATE INDEX deliveries_status_idx ON deliveries (organization_id, status, id);
CREATE INDEX deliveries_platform_idx ON deliveries (organization_id, platform, id);
CREATE INDEX deliveries_invocation_idx ON deliveries (invocation_id) WHERE invocation_id IS NOT NULL;

CREATE TABLE delivery_attempts (
  delivery_id  text NOT NULL REFERENCES deliveries (id),
  attempt      integer NOT NULL,
  started_at   timestamptz NOT NULL,
  duration_ms  integer NOT NULL,
  status_code  integer,
  outcome      text NOT NULL,
  error        text,
  PRIMARY KEY (delivery_id, attempt),
  CONSTRAINT delivery_attempts_outcome_check CHECK (outcome IN ('delivered', 'retry', 'failed'))
);

-- An endpoint (an agent's platform, or a subscription) that keeps failing is paused.
CREATE TABLE delivery_endpoints (
  endpoint         text PRIMARY KEY,
  organization_id  text NOT NULL REFERENCES organizations (id),
  failing_since    timestamptz,
  last_failure_at  timestamptz,
  paused_at        timestamptz
);

ALTER TABLE invocations
  ADD COLUMN webhook_delivery_status text,
  ADD COLUMN webhook_delivery_error  text,
  ADD COLUMN webhook_delivered_at    timestamptz;

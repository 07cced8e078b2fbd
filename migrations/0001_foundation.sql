-- Foundation: organizations, users, API keys, audit events, external agents.
-- Unqualified names: the schema comes from the connection's search_path
-- (STEWARD_DB_SCHEMA), so the same file serves any schema on PostgreSQL and PGlite.

CREATE TABLE organizations (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT organizations_name_key UNIQUE (name)
);

CREATE TABLE users (
  id               text PRIMARY KEY,
  organization_id  text NOT NULL REFERENCES organizations (id),
  email            text NOT NULL,
  name             text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT users_organization_email_key UNIQUE (organization_id, email)
);

CREATE TABLE api_keys (
  id               text PRIMARY KEY,
  organization_id  text NOT NULL REFERENCES organizations (id),
  user_id          text REFERENCES users (id),
  name             text NOT NULL,
  role             text NOT NULL,
  team             text,
  platform_admin   boolean NOT NULL DEFAULT false,
  prefix           text NOT NULL,
  key_hash         text NOT NULL,
  created_by       text,
  expires_at       timestamptz,
  revoked_at       timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash)
);
CREATE INDEX api_keys_organization_idx ON api_keys (organization_id, id);

CREATE TABLE audit_events (
  id               text PRIMARY KEY,
  organization_id  text NOT NULL REFERENCES organizations (id),
  actor_type       text NOT NULL,
  actor_id         text NOT NULL,
  action           text NOT NULL,
  resource_type    text NOT NULL,
  resource_id      text,
  request_id       text,
  details          jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_organization_idx ON audit_events (organization_id, id);
CREATE INDEX audit_events_resource_idx ON audit_events (organization_id, resource_type, resource_id);

CREATE TABLE external_agents (
  id                 text PRIMARY KEY,
  organization_id    text NOT NULL REFERENCES organizations (id),
  name               text NOT NULL,
  description        text,
  platform           text NOT NULL,
  webhook_url        text NOT NULL,
  auth_type          text NOT NULL,
  auth_config        jsonb NOT NULL DEFAULT '{}'::jsonb,
  platform_config    jsonb NOT NULL DEFAULT '{}'::jsonb,
  rate_limit_config  jsonb NOT NULL DEFAULT '{}'::jsonb,
  budget_config      jsonb NOT NULL DEFAULT '{}'::jsonb,
  capabilities       jsonb NOT NULL DEFAULT '[]'::jsonb,
  config             jsonb NOT NULL DEFAULT '{}'::jsonb,
  tags               text[] NOT NULL DEFAULT '{}',
  status             text NOT NULL DEFAULT 'active',
  version            integer NOT NULL DEFAULT 1,
  created_by         text,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  deleted_at         timestamptz,
  CONSTRAINT external_agents_status_check CHECK (status IN ('active', 'inactive', 'deleted'))
);
-- Names are unique among an organization's live agents; a deleted name can be reused.
CREATE UNIQUE INDEX external_agents_org_name_key ON external_agents (organization_id, name)
  WHERE status <> 'deleted';
CREATE INDEX external_agents_org_idx ON external_agents (organization_id, id);
CREATE INDEX external_agents_org_status_idx ON external_agents (organization_id, status, id);
CREATE INDEX external_agents_org_platform_idx ON external_agents (organization_id, platform, id);
CREATE INDEX external_agents_tags_idx ON external_agents USING gin (tags);

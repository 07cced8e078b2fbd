-- The Agent Cards A2A agents were imported from: the newest row is the card in force,
-- the older ones the history each re-import keeps.
CREATE TABLE external_agent_cards (
  id              bigserial PRIMARY KEY,
  organization_id text NOT NULL REFERENCES organizations (id),
  agent_id        text NOT NULL REFERENCES external_agents (id),
  -- Where it was fetched from; null when the card was sent inline.
  source_url      text,
  card            jsonb NOT NULL,
  fetched_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX external_agent_cards_agent_idx ON external_agent_cards (organization_id, agent_id, id);

-- Whether A2A clients may reach the agent through Steward, at /a2a/{agent_id}.
ALTER TABLE external_agents ADD COLUMN a2a_published boolean NOT NULL DEFAULT false;

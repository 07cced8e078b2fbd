-- The asynchronous executor: jobs (declarative graphs run with LangGraph), their event
-- log for late stream readers, and the messages that could never run.
-- LangGraph's checkpoint tables are created in the same schema by its own setup().

CREATE TABLE jobs (
  -- The job_id the submitter chose: a job seen before is never run twice.
  id               text PRIMARY KEY,
  organization_id  text NOT NULL REFERENCES organizations (id),
  trace_id         text NOT NULL,
  name             text NOT NULL,
  definition       jsonb NOT NULL,
  input            jsonb NOT NULL,
  status           text NOT NULL DEFAULT 'queued',
  result           jsonb,
  error            jsonb,
  -- Runs started (a redelivery after a crash is one more).
  attempts         integer NOT NULL DEFAULT 0,
  source           text NOT NULL,
  cancel_requested boolean NOT NULL DEFAULT false,
  -- A running job belongs to one worker until then (renewed while it runs): a second
  -- delivery of the same job does not run it alongside, and a crashed worker's job is
  -- taken over once the lease has run out.
  lease_until      timestamptz,
  created_by       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  started_at       timestamptz,
  finished_at      timestamptz,
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT jobs_status_check CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
  CONSTRAINT jobs_source_check CHECK (source IN ('http', 'jetstream', 'cloudevent'))
);
CREATE INDEX jobs_organization_idx ON jobs (organization_id, id);
CREATE INDEX jobs_organization_status_idx ON jobs (organization_id, status, id);

-- What a job streamed, in order, so a reader arriving late (or reconnecting) gets it all.
CREATE TABLE job_events (
  job_id     text NOT NULL REFERENCES jobs (id),
  seq        integer NOT NULL,
  event_type text NOT NULL,
  data       jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (job_id, seq)
);

CREATE TABLE job_dead_letters (
  id         bigserial PRIMARY KEY,
  subject    text NOT NULL,
  -- The message exactly as it arrived.
  raw        bytea NOT NULL,
  headers    jsonb NOT NULL DEFAULT '{}'::jsonb,
  reason     text NOT NULL,
  job_id     text,
  deliveries integer NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_dead_letters_created_idx ON job_dead_letters (created_at);

-- Background duties that exactly one replica must do at a time (approval expiry, the
-- heartbeat sweep, telemetry retention): whoever holds a duty's unexpired lease does it.
CREATE TABLE duty_leases (
  duty text PRIMARY KEY,
  holder text NOT NULL,
  expires_at timestamptz NOT NULL,
  acquired_at timestamptz NOT NULL DEFAULT now()
);

#!/usr/bin/env bash
# Applies migrations/*.sql with psql — for a Kubernetes init container or any host
# without Node. Same files, same bookkeeping table and same advisory lock as
# `steward migrate`, so the two can be mixed and concurrent runs apply nothing twice.
#
# Connection: DATABASE_URL, or POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER,
# POSTGRES_PASSWORD, POSTGRES_DB. Schema: STEWARD_DB_SCHEMA (default public).
# Exits non-zero if anything fails.
set -euo pipefail

migrations_dir="${STEWARD_MIGRATIONS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../migrations" && pwd)}"
schema="${STEWARD_DB_SCHEMA:-public}"
if ! [[ "$schema" =~ ^[a-z_][a-z0-9_]{0,62}$ ]]; then
  echo "run-migrations: STEWARD_DB_SCHEMA must be a lower-case SQL identifier (got \"$schema\")" >&2
  exit 2
fi

if [ -n "${DATABASE_URL:-}" ]; then
  target=("$DATABASE_URL")
elif [ -n "${POSTGRES_HOST:-}" ]; then
  export PGHOST="$POSTGRES_HOST" PGPORT="${POSTGRES_PORT:-5432}" PGUSER="${POSTGRES_USER:-postgres}"
  export PGDATABASE="${POSTGRES_DB:-steward}"
  [ -n "${POSTGRES_PASSWORD:-}" ] && export PGPASSWORD="$POSTGRES_PASSWORD"
  target=()
else
  echo "run-migrations: set DATABASE_URL or POSTGRES_HOST (with POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB)" >&2
  exit 2
fi

export PGOPTIONS="-c search_path=$schema -c client_min_messages=warning"
export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-10}"
run_psql() { psql "${target[@]}" --no-psqlrc --quiet --set ON_ERROR_STOP=1 "$@"; }

run_psql --single-transaction --set lock_key="steward_migrations:$schema" >/dev/null <<SQL
SELECT pg_advisory_xact_lock(hashtext(:'lock_key'));
CREATE SCHEMA IF NOT EXISTS "$schema";
CREATE TABLE IF NOT EXISTS steward_migrations (
  version text PRIMARY KEY,
  applied_at timestamptz NOT NULL DEFAULT now()
);
SQL

shopt -s nullglob
files=("$migrations_dir"/*.sql)
if [ ${#files[@]} -eq 0 ]; then
  echo "run-migrations: no migrations found in $migrations_dir" >&2
  exit 2
fi

applied=0
for file in "${files[@]}"; do
  version="$(basename "$file" .sql)"
  # One transaction per file: take the lock, skip the file if it is already recorded,
  # otherwise apply it and record it.
  output=$(run_psql --single-transaction --tuples-only --no-align \
    --set version="$version" --set lock_key="steward_migrations:$schema" --set file="$file" <<'SQL'
SELECT pg_advisory_xact_lock(hashtext(:'lock_key'));
SELECT NOT EXISTS (SELECT 1 FROM steward_migrations WHERE version = :'version') AS pending \gset
\if :pending
\i :file
INSERT INTO steward_migrations (version) VALUES (:'version');
SELECT 'applied';
\endif
SQL
  )
  if grep -q '^applied$' <<<"$output"; then
    echo "run-migrations: applied $version"
    applied=$((applied + 1))
  fi
done
echo "run-migrations: done ($applied applied, schema $schema)"

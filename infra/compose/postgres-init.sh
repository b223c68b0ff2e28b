#!/bin/bash
# Creates the databases of the team profile, each owned by a role of its own: MLflow's tracking
# store, MLflow's auth store and Prefect's database. The postgres image runs this once, on an
# empty data directory, as the superuser (mounted under /docker-entrypoint-initdb.d/).
#
# The passwords come from the environment (infra/env/postgres.env, or the mlops-postgres secret on
# Kubernetes). psql reads them itself with \getenv and quotes them as literals, so no password
# appears on a command line or in the shell's expansion of the SQL.
set -euo pipefail

for name in MLFLOW_DB_PASSWORD MLFLOW_AUTH_DB_PASSWORD PREFECT_DB_PASSWORD; do
    if [ -z "${!name:-}" ]; then
        echo "postgres-init: $name is not set; see infra/make-secrets.sh" >&2
        exit 1
    fi
done

psql --no-psqlrc --set ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" \
    --dbname "${POSTGRES_DB:-postgres}" <<'SQL'
\getenv mlflow_password MLFLOW_DB_PASSWORD
\getenv mlflow_auth_password MLFLOW_AUTH_DB_PASSWORD
\getenv prefect_password PREFECT_DB_PASSWORD

CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_password';
CREATE ROLE mlflow_auth LOGIN PASSWORD :'mlflow_auth_password';
CREATE ROLE prefect LOGIN PASSWORD :'prefect_password';

-- The owner of a database owns its public schema (PostgreSQL 15+), so each service creates its
-- tables itself; no role can connect to another service's database.
CREATE DATABASE mlflow OWNER mlflow;
CREATE DATABASE mlflow_auth OWNER mlflow_auth;
CREATE DATABASE prefect OWNER prefect;
REVOKE CONNECT, TEMPORARY ON DATABASE mlflow, mlflow_auth, prefect FROM PUBLIC;

-- Prefect's migrations use trigram indexes.
\connect prefect
CREATE EXTENSION IF NOT EXISTS pg_trgm;
SQL

echo "postgres-init: created databases mlflow, mlflow_auth and prefect with roles of the same names"

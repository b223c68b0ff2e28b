#!/bin/sh
# Writes the configuration of MLflow's basic-auth app from the environment, then runs the command
# it is given (the MLflow server):
#
#   sh infra/compose/mlflow-auth-config.sh mlflow server --app-name basic-auth ...
#
# The file holds two secrets (the auth database's password, the first admin's password), so it
# is written at container start, mode 600, never baked into the image or kept in the repository.
#
#   MLFLOW_AUTH_CONFIG_PATH   where to write it; the MLflow server reads it from there
#   MLFLOW_AUTH_DB_PASSWORD   password of the role mlflow_auth
#   MLFLOW_ADMIN_PASSWORD     password of the admin user, at least 12 characters; used when the
#                             auth store is created (change it later in MLflow, not here)
#   MLFLOW_AUTH_DB_HOST       the PostgreSQL server (default postgres), MLFLOW_AUTH_DB_PORT (5432)
set -eu

: "${MLFLOW_AUTH_CONFIG_PATH:?is not set}"
: "${MLFLOW_AUTH_DB_PASSWORD:?is not set; see infra/make-secrets.sh}"
: "${MLFLOW_ADMIN_PASSWORD:?is not set; see infra/make-secrets.sh}"

# Python quotes the password for the URI and escapes % for the ini reader (configparser).
python - <<'PY'
import os
import sys
from pathlib import Path
from urllib.parse import quote

env = os.environ
admin_password = env["MLFLOW_ADMIN_PASSWORD"]
if len(admin_password) < 12:
    sys.exit("mlflow-auth-config: MLFLOW_ADMIN_PASSWORD must have at least 12 characters")
if any(c in value for value in (admin_password, env["MLFLOW_AUTH_DB_PASSWORD"]) for c in "\r\n"):
    sys.exit("mlflow-auth-config: a password holds a line break")


def ini(value: str) -> str:
    return value.replace("%", "%%")


host = env.get("MLFLOW_AUTH_DB_HOST", "postgres")
port = env.get("MLFLOW_AUTH_DB_PORT", "5432")
database_uri = (f"postgresql+psycopg2://mlflow_auth:{quote(env['MLFLOW_AUTH_DB_PASSWORD'], safe='')}"
                f"@{host}:{port}/mlflow_auth")
text = (
    "[mlflow]\n"
    "default_permission = READ\n"
    f"database_uri = {ini(database_uri)}\n"
    "admin_username = admin\n"
    f"admin_password = {ini(admin_password)}\n"
    "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    # Checking a password (PBKDF2) on every request made logging a model about 4x slower; a
    # changed password or permission then takes up to a minute to reach every server worker.
    "auth_cache_ttl_seconds = 60\n"
)
path = Path(env["MLFLOW_AUTH_CONFIG_PATH"])
path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.fchmod(descriptor, 0o600)
with os.fdopen(descriptor, "w") as file:
    file.write(text)
print(f"mlflow-auth-config: wrote {path} (mode 600)")
PY

exec "$@"

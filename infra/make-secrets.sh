#!/usr/bin/env bash
# Writes the secrets of the team profile into infra/env/ (git-ignored), one env file per consumer:
#
#   postgres.env   POSTGRES_PASSWORD, MLFLOW_DB_PASSWORD, MLFLOW_AUTH_DB_PASSWORD, PREFECT_DB_PASSWORD
#   seaweedfs.env  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (the S3 store's only key)
#   mlflow.env     PGPASSWORD, MLFLOW_AUTH_DB_PASSWORD, MLFLOW_ADMIN_PASSWORD,
#                  MLFLOW_FLASK_SERVER_SECRET_KEY, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
#   prefect.env    PGPASSWORD, PREFECT_SERVER_API_AUTH_STRING
#   client.env     MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD, PREFECT_API_AUTH_STRING,
#                  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
#
# infra/compose.yaml reads them with env_file:; on Kubernetes each becomes a Secret
# (infra/k8s/README.md). Usage:
#
#   infra/make-secrets.sh              write infra/env/*.env; refuses if any of them exists
#   infra/make-secrets.sh --out DIR    write into DIR instead
#   infra/make-secrets.sh --force      write new secrets over existing files
#
# Passwords are 48 random hex characters (openssl rand, else /dev/urandom): safe in URIs, ini
# and env files. Files are mode 600. It prints the file and variable names, never a value.
#
# --force on a profile that has already started: PostgreSQL keeps the roles' old passwords and
# MLflow its admin's old password, both stored in their volumes. Either change them there too
# (ALTER ROLE ... PASSWORD, MLflow's update-password), or start from empty volumes
# (`docker compose -f infra/compose.yaml down --volumes` deletes all runs, models and data).
set -euo pipefail
umask 077

out="$(cd "$(dirname "$0")" && pwd)/env"
force=false
while [ $# -gt 0 ]; do
    case "$1" in
        --force) force=true ;;
        --out) out=${2:?--out needs a folder}; shift ;;
        --out=*) out=${1#--out=} ;;
        -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) echo "make-secrets: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

files=(postgres.env seaweedfs.env mlflow.env prefect.env client.env)
existing=()
for file in "${files[@]}"; do
    if [ -e "$out/$file" ]; then existing+=("$out/$file"); fi
done
if [ ${#existing[@]} -gt 0 ] && ! $force; then
    echo "make-secrets: not overwriting ${existing[*]}; --force writes new secrets (read --help first)" >&2
    exit 1
fi

random_hex() {  # $1 random bytes, as 2 x $1 hex characters
    if command -v openssl >/dev/null 2>&1; then
        openssl rand -hex "$1"
    else
        od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
    fi
}

postgres_password=$(random_hex 24)
mlflow_db_password=$(random_hex 24)
mlflow_auth_db_password=$(random_hex 24)
prefect_db_password=$(random_hex 24)
s3_access_key=$(random_hex 10 | tr a-f A-F)
s3_secret_key=$(random_hex 24)
mlflow_admin_password=$(random_hex 24)
flask_secret_key=$(random_hex 32)
prefect_auth_string="admin:$(random_hex 24)"

if [ ! -d "$out" ]; then mkdir -p "$out" && chmod 700 "$out"; fi

write() {  # file, then its NAME=value lines
    local file=$1 tmp
    shift
    tmp=$(mktemp "$out/.$file.XXXXXX")
    {
        echo "# Written by infra/make-secrets.sh. Secret: keep it out of git, images and logs."
        printf '%s\n' "$@"
    } > "$tmp"
    chmod 600 "$tmp"
    mv -f "$tmp" "$out/$file"
    local names=() line
    for line in "$@"; do names+=("${line%%=*}"); done
    echo "wrote $out/$file (mode 600): ${names[*]}"
}

write postgres.env \
    "POSTGRES_PASSWORD=$postgres_password" \
    "MLFLOW_DB_PASSWORD=$mlflow_db_password" \
    "MLFLOW_AUTH_DB_PASSWORD=$mlflow_auth_db_password" \
    "PREFECT_DB_PASSWORD=$prefect_db_password"
write seaweedfs.env \
    "AWS_ACCESS_KEY_ID=$s3_access_key" \
    "AWS_SECRET_ACCESS_KEY=$s3_secret_key"
write mlflow.env \
    "PGPASSWORD=$mlflow_db_password" \
    "MLFLOW_AUTH_DB_PASSWORD=$mlflow_auth_db_password" \
    "MLFLOW_ADMIN_PASSWORD=$mlflow_admin_password" \
    "MLFLOW_FLASK_SERVER_SECRET_KEY=$flask_secret_key" \
    "AWS_ACCESS_KEY_ID=$s3_access_key" \
    "AWS_SECRET_ACCESS_KEY=$s3_secret_key"
write prefect.env \
    "PGPASSWORD=$prefect_db_password" \
    "PREFECT_SERVER_API_AUTH_STRING=$prefect_auth_string"
write client.env \
    "MLFLOW_TRACKING_USERNAME=admin" \
    "MLFLOW_TRACKING_PASSWORD=$mlflow_admin_password" \
    "PREFECT_API_AUTH_STRING=$prefect_auth_string" \
    "AWS_ACCESS_KEY_ID=$s3_access_key" \
    "AWS_SECRET_ACCESS_KEY=$s3_secret_key"

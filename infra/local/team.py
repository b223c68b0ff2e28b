"""The team profile as local processes, for anyone without Docker, and for the tests.

The same services and settings as ``infra/compose.yaml``: PostgreSQL databases and roles for MLflow,
its auth store and Prefect (on a PostgreSQL server that already runs); SeaweedFS as the S3 store for
MLflow artifacts and the DVC remote; an MLflow server with basic auth that proxies artifacts; a
Prefect server with an API auth string; a process work pool and its worker.

    .venv/bin/python infra/local/team.py up              # starts everything, Ctrl-C stops it all
    set -a; source .team/client.env; set +a               # in another shell: use it
    .venv/bin/mlops doctor

Secrets are generated on the first start into ``.team/secrets.json`` (mode 600) and reused; the
databases and stored objects persist in ``.team`` and PostgreSQL until ``team.py drop``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pipelines.adapters.prefect_server import (  # noqa: E402
    HOST,
    TemporaryPrefectServer,
    free_port,
    port_is_free,
)

BIN = Path(sys.executable).parent
WORK_POOL = "mlops"
ADMIN = "admin"
ANALYTICS_OFF = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "true",
                 "DVC_NO_ANALYTICS": "true", "MLFLOW_ENABLE_TELEMETRY": "false"}


class Service(TemporaryPrefectServer):
    """One service of the profile: a child process that ends with this one, ready when it answers."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_file: Path, port: int,
                 health_path: str, start_timeout: float = 180.0) -> None:
        super().__init__(log_file, host=HOST, port=port)
        self.kind = name
        self.start_timeout = start_timeout
        self._service_command = command
        self._service_env = env
        self._health_path = health_path

    @property
    def health_url(self) -> str:
        return f"http://{self.host}:{self.port}{self._health_path}"

    def _command(self) -> list[str]:
        return self._service_command

    def _environment(self) -> dict[str, str]:
        return self._service_env


@dataclass
class Ports:
    s3: int = 8333
    mlflow: int = 5000
    prefect: int = 4200
    worker_health: int = 8480
    seaweed_base: int = 19000  # master, volume, filer, webdav and admin ports from here on

    @classmethod
    def free(cls) -> Ports:
        return cls(s3=free_port(), mlflow=free_port(), prefect=free_port(), worker_health=free_port(),
                   seaweed_base=_free_block())


def _free_block() -> int:
    """A base port with base..base+5 and their grpc twins (+10000) free, for SeaweedFS."""
    for _ in range(200):
        base = random.randrange(30000, 50000, 10)
        if all(port_is_free(p) and port_is_free(p + 10000) for p in range(base, base + 6)):
            return base
    raise RuntimeError("no free block of ports for SeaweedFS")


@dataclass
class TeamProfile:
    """The services of the team profile under ``folder``, their databases named ``prefix_*``."""

    folder: Path
    prefix: str = "mlops"
    ports: Ports = field(default_factory=Ports)
    pg_admin: str = os.environ.get("MLOPS_LOCAL_PG_ADMIN", "host=127.0.0.1 port=5432 user=postgres "
                                                            "dbname=postgres")
    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    services: list[Service] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.folder = self.folder.resolve()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.secrets = self._secrets()

    # --- what clients use ----------------------------------------------------------------------

    @property
    def mlflow_url(self) -> str:
        return f"http://{HOST}:{self.ports.mlflow}"

    @property
    def prefect_url(self) -> str:
        return f"http://{HOST}:{self.ports.prefect}/api"

    @property
    def s3_url(self) -> str:
        return f"http://{HOST}:{self.ports.s3}"

    def client_env(self, user: str = ADMIN, password: str | None = None) -> dict[str, str]:
        """What an `mlops` process (or the worker) needs to work against this profile."""
        return {
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            "MLFLOW_TRACKING_USERNAME": user,
            "MLFLOW_TRACKING_PASSWORD": password or self.secrets["mlflow_admin_password"],
            "PREFECT_API_URL": self.prefect_url,
            "PREFECT_API_AUTH_STRING": self.secrets["prefect_auth_string"],
            "MLOPS_WORK_POOL": WORK_POOL,
            "MLOPS_DVC_REMOTE": f"s3://dvc/{self.prefix}",
            "MLOPS_DVC_ENDPOINT_URL": self.s3_url,
            "AWS_ACCESS_KEY_ID": self.secrets["s3_access_key"],
            "AWS_SECRET_ACCESS_KEY": self.secrets["s3_secret_key"],
            **ANALYTICS_OFF,
        }

    def write_client_env(self) -> Path:
        path = self.folder / "client.env"
        _write_private(path, "".join(f"{k}={v}\n" for k, v in self.client_env().items()))
        return path

    # --- starting and stopping -----------------------------------------------------------------

    def up(self, notify=print) -> None:
        """Databases, then each service in dependency order; each is ready when this returns."""
        self.create_databases()
        notify(f"PostgreSQL: databases {', '.join(self.databases.values())}")
        self._start(self._seaweedfs())
        notify(f"SeaweedFS S3: {self.s3_url} (buckets mlflow, dvc)")
        self._migrate_mlflow()
        self._start(self._mlflow())
        notify(f"MLflow: {self.mlflow_url} (basic auth, user {ADMIN})")
        self._migrate_prefect()
        self._start(self._prefect())
        notify(f"Prefect: {self.prefect_url} (API auth string)")
        self._create_work_pool()
        self._start(self._worker())
        notify(f"Prefect worker on work pool '{WORK_POOL}'")

    def down(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.services.clear()

    def _start(self, service: Service) -> None:
        service.start()
        self.services.append(service)
        service.wait_until_ready(service.start_timeout)

    # --- PostgreSQL -----------------------------------------------------------------------------

    @property
    def databases(self) -> dict[str, str]:
        return {role: f"{self.prefix}_{role}" for role in ("mlflow", "mlflow_auth", "prefect")}

    def create_databases(self) -> None:
        """One role and one database per service, each role owning its database."""
        with self._admin_connection() as cursor:
            for role, database in self.databases.items():
                password = self.secrets[f"pg_{role}_password"]
                cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (database,))
                verb = "ALTER" if cursor.fetchone() else "CREATE"
                cursor.execute(f'{verb} ROLE "{database}" LOGIN PASSWORD %s', (password,))
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                if not cursor.fetchone():
                    cursor.execute(f'CREATE DATABASE "{database}" OWNER "{database}"')

    def drop_databases(self) -> None:
        with self._admin_connection() as cursor:
            for database in self.databases.values():
                cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                cursor.execute(f'DROP ROLE IF EXISTS "{database}"')

    @contextlib.contextmanager
    def _admin_connection(self) -> Iterator[object]:
        import psycopg2

        connection = psycopg2.connect(self.pg_admin)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                yield cursor
        finally:
            connection.close()

    def _pg_uri(self, role: str, driver: str) -> str:
        """A URI without the password: libpq and asyncpg read it from PGPASSWORD."""
        database = self.databases[role]
        return f"postgresql+{driver}://{database}@{self.pg_host}:{self.pg_port}/{database}"

    def _pg_env(self, role: str) -> dict[str, str]:
        return {"PGPASSWORD": self.secrets[f"pg_{role}_password"]}

    # --- the services ---------------------------------------------------------------------------

    def _seaweedfs(self) -> Service:
        base = self.ports.seaweed_base
        data = self.folder / "seaweedfs"
        data.mkdir(exist_ok=True)
        command = [str(BIN / "weed"), "mini", f"-dir={data}", f"-ip={HOST}", f"-ip.bind={HOST}",
                   "-admin.ui=false", f"-s3.port={self.ports.s3}", f"-master.port={base}",
                   f"-volume.port={base + 1}", f"-filer.port={base + 2}", f"-webdav.port={base + 3}",
                   f"-admin.port={base + 4}", f"-s3.port.iceberg={base + 5}"]
        env = {"AWS_ACCESS_KEY_ID": self.secrets["s3_access_key"],
               "AWS_SECRET_ACCESS_KEY": self.secrets["s3_secret_key"], "S3_BUCKET": "mlflow,dvc"}
        return Service("SeaweedFS", command, env, self.folder / "logs" / "seaweedfs.log", self.ports.s3,
                       "/healthz", start_timeout=90)

    def _mlflow_env(self) -> dict[str, str]:
        auth_ini = self.folder / "mlflow-auth.ini"
        auth_password = self.secrets["pg_mlflow_auth_password"]
        _write_private(auth_ini, (
            "[mlflow]\ndefault_permission = READ\n"
            f"database_uri = postgresql+psycopg2://{self.databases['mlflow_auth']}:{auth_password}"
            f"@{self.pg_host}:{self.pg_port}/{self.databases['mlflow_auth']}\n"
            f"admin_username = {ADMIN}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            # Checking a password (PBKDF2) on every request made logging a model ~4x slower.
            "auth_cache_ttl_seconds = 60\n"))
        return {**self._pg_env("mlflow"), **ANALYTICS_OFF,
                "MLFLOW_AUTH_CONFIG_PATH": str(auth_ini),
                "MLFLOW_AUTH_ADMIN_PASSWORD": self.secrets["mlflow_admin_password"],
                "MLFLOW_FLASK_SERVER_SECRET_KEY": self.secrets["mlflow_flask_secret"],
                "MLFLOW_S3_ENDPOINT_URL": self.s3_url,
                "AWS_ACCESS_KEY_ID": self.secrets["s3_access_key"],
                "AWS_SECRET_ACCESS_KEY": self.secrets["s3_secret_key"],
                "MLFLOW_SERVER_ALLOWED_HOSTS": f"{HOST}:{self.ports.mlflow},localhost:{self.ports.mlflow}"}

    def _migrate_mlflow(self) -> None:
        _run([str(BIN / "mlflow"), "db", "upgrade", self._pg_uri("mlflow", "psycopg2")],
             {**os.environ, **self._mlflow_env()}, self.folder / "logs" / "mlflow-migrate.log")

    def _mlflow(self) -> Service:
        command = [str(BIN / "mlflow"), "server", "--host", HOST, "--port", str(self.ports.mlflow),
                   "--backend-store-uri", self._pg_uri("mlflow", "psycopg2"),
                   "--artifacts-destination", f"s3://mlflow/{self.prefix}", "--serve-artifacts",
                   "--app-name", "basic-auth", "--workers", "2"]
        return Service("MLflow server", command, self._mlflow_env(), self.folder / "logs" / "mlflow.log",
                       self.ports.mlflow, "/health")

    def _prefect_env(self) -> dict[str, str]:
        return {**self._pg_env("prefect"), **ANALYTICS_OFF,
                "PREFECT_HOME": str(self.folder / "prefect-home"),
                "PREFECT_SERVER_DATABASE_CONNECTION_URL": self._pg_uri("prefect", "asyncpg"),
                "PREFECT_SERVER_DATABASE_MIGRATE_ON_START": "false",
                "PREFECT_SERVER_API_AUTH_STRING": self.secrets["prefect_auth_string"],
                "PREFECT_UI_API_URL": self.prefect_url}

    def _migrate_prefect(self) -> None:
        _run([str(BIN / "prefect"), "server", "database", "upgrade", "-y"],
             {**os.environ, **self._prefect_env()}, self.folder / "logs" / "prefect-migrate.log")

    def _prefect(self) -> Service:
        command = [str(BIN / "prefect"), "server", "start", "--host", HOST, "--port", str(self.ports.prefect)]
        return Service("Prefect server", command, self._prefect_env(), self.folder / "logs" / "prefect.log",
                       self.ports.prefect, "/api/health")

    def _worker_env(self) -> dict[str, str]:
        return {**self.client_env(), "PREFECT_HOME": str(self.folder / "worker-home"),
                "PREFECT_WORKER_WEBSERVER_HOST": HOST,
                "PREFECT_WORKER_WEBSERVER_PORT": str(self.ports.worker_health)}

    def _create_work_pool(self) -> None:
        _run([str(BIN / "prefect"), "work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"],
             {**os.environ, **self._worker_env()}, self.folder / "logs" / "work-pool.log")

    def _worker(self) -> Service:
        command = [str(BIN / "prefect"), "worker", "start", "--pool", WORK_POOL, "--type", "process",
                   "--with-healthcheck"]
        # The worker's API variables must survive the base class dropping PREFECT_API_URL.
        return Service("Prefect worker", command, self._worker_env(), self.folder / "logs" / "worker.log",
                       self.ports.worker_health, "/health", start_timeout=120)

    # --- users ----------------------------------------------------------------------------------

    def add_mlflow_user(self, username: str, password: str) -> None:
        """A user with the default permission (READ on everything until granted more)."""
        from mlflow.server.auth.client import AuthServiceClient

        with _environment(MLFLOW_TRACKING_USERNAME=ADMIN,
                          MLFLOW_TRACKING_PASSWORD=self.secrets["mlflow_admin_password"]):
            AuthServiceClient(self.mlflow_url).create_user(username, password)

    def grant_mlflow_permission(self, username: str, resource_type: str, resource: str,
                                permission: str) -> None:
        """``permission`` (READ, EDIT, MANAGE) on an ``experiment`` id or a ``registered_model`` name."""
        from mlflow.server.auth.client import AuthServiceClient

        with _environment(MLFLOW_TRACKING_USERNAME=ADMIN,
                          MLFLOW_TRACKING_PASSWORD=self.secrets["mlflow_admin_password"]):
            AuthServiceClient(self.mlflow_url).grant_user_permission(username, resource_type, resource,
                                                                     permission)

    # --- secrets --------------------------------------------------------------------------------

    def _secrets(self) -> dict[str, str]:
        path = self.folder / "secrets.json"
        if path.exists():
            return json.loads(path.read_text())
        values = {name: secrets.token_urlsafe(24) for name in (
            "pg_mlflow_password", "pg_mlflow_auth_password", "pg_prefect_password", "mlflow_admin_password",
            "mlflow_flask_secret", "s3_secret_key")}
        values["s3_access_key"] = "mlops" + secrets.token_hex(6)
        values["prefect_auth_string"] = f"{ADMIN}:{secrets.token_urlsafe(24)}"
        _write_private(path, json.dumps(values, indent=1))
        return values


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        stream.write(text)
    os.chmod(path, 0o600)


def _run(command: list[str], env: dict[str, str], log_file: Path) -> None:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        done = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=600)
    if done.returncode != 0:
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-15:])
        raise RuntimeError(f"{' '.join(command[:4])} failed (exit {done.returncode}); log {log_file}\n{tail}")


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _stop_as_on_ctrl_c(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description="The team profile as local processes (no containers).")
    parser.add_argument("action", choices=["up", "drop"], help="up: start and serve until Ctrl-C; "
                        "drop: delete the profile's databases and its folder's data")
    parser.add_argument("--dir", type=Path, default=REPO / ".team", help="state folder (default .team)")
    parser.add_argument("--prefix", default="mlops", help="prefix of the PostgreSQL databases and roles")
    options = parser.parse_args()
    profile = TeamProfile(options.dir, prefix=options.prefix)
    if options.action == "drop":
        profile.drop_databases()
        print(f"dropped databases {', '.join(profile.databases.values())}; remove {profile.folder} by hand")
        return 0
    signal.signal(signal.SIGTERM, _stop_as_on_ctrl_c)
    try:
        profile.up()
        env_file = profile.write_client_env()
        print(f"ready. In another shell: set -a; source {env_file}; set +a   (Ctrl-C stops everything)")
        while all(s.process is not None and s.process.poll() is None for s in profile.services):
            time.sleep(1)
        print("a service stopped; see the logs in", profile.folder / "logs", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        profile.down()


if __name__ == "__main__":
    sys.exit(main())

"""One cycle against the team profile and embedded, on the same machine in one run.

    .venv/bin/python benchmarks/team_profile.py [--use-case marketing] [--rounds 2]

Starts the team profile as local processes (`infra/local/team.py`: PostgreSQL databases, SeaweedFS,
MLflow with basic auth and proxied artifacts, Prefect with an auth string, a worker), lays out two
fresh clones, and times `mlops run` alternately: embedded (SQLite store, temporary Prefect server)
and against the profile (configured through environment variables only). Rounds alternate so that
both see the machine in the same state; the first round of each creates its store. Needs
PostgreSQL on 127.0.0.1:5432; its databases are dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
QUIET = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "true",
         "DVC_NO_ANALYTICS": "true", "GX_ANALYTICS_ENABLED": "false"}
MLOPS = str(Path(sys.executable).parent / "mlops")


def clone(folder: Path) -> Path:
    from tests.conftest import copy_project_files, git

    root = copy_project_files(folder / "project")
    git(root, "-c", "user.name=benchmark", "-c", "user.email=benchmark@localhost", "commit", "-qm", "clone")
    return root


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stdout.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"{' '.join(command)} failed with exit code {done.returncode}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--use-case", default="marketing")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from tests.team.conftest import load_team_module

    team_local = load_team_module()
    folder = Path(tempfile.mkdtemp(prefix="mlops-team-bench-"))
    profile = team_local.TeamProfile(folder / "team", prefix=f"mlops_bench_{os.getpid()}",
                                     ports=team_local.Ports.free())
    base = {k: v for k, v in os.environ.items()
            if k not in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "MLOPS_PROJECT")} | QUIET
    try:
        started = time.perf_counter()
        profile.up(notify=lambda message: None)
        print(f"team profile up in {time.perf_counter() - started:.1f} s (PostgreSQL databases, SeaweedFS, "
              "MLflow, Prefect, worker)")
        embedded_root, team_root = clone(folder / "embedded"), clone(folder / "team-clone")
        team_env = base | profile.client_env()
        timed([MLOPS, "data", "pull"], embedded_root, base)
        timed([MLOPS, "data", "pull"], team_root, team_env)
        figures: dict[str, list[float]] = {"embedded": [], "team": []}
        for round_number in range(1, args.rounds + 1):
            for name, root, env in (("embedded", embedded_root, base), ("team", team_root, team_env)):
                seconds = timed([MLOPS, "run", "--use-case", args.use_case, "--no-tune"], root, env)
                figures[name].append(seconds)
                print(f"round {round_number}: {name:<8} mlops run -u {args.use_case}: {seconds:6.1f} s")
        for index in range(args.rounds):
            ratio = figures["team"][index] / figures["embedded"][index]
            print(f"round {index + 1}: team / embedded = {ratio:.2f}")
    finally:
        profile.down()
        profile.drop_databases()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

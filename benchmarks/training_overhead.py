"""What the pipeline costs on top of training: `mlops run --use-case marketing` against bare training.

    .venv/bin/python benchmarks/training_overhead.py [--use-case marketing]

Lays out a fresh clone in a temporary folder and pulls its data, then times, each in its own
process so that both pay their imports:

* bare training: read the CSV, cross-validate and fit the same candidates and baselines on the
  same folds with the same parallelism, and nothing else (no Prefect, MLflow, Great Expectations
  or DVC);
* `mlops run` twice: the first cycle on a new MLflow store (the store is created, no champion
  yet), then a second one on unchanged data (the champion is scored on the holdout too).

Each cycle is split into stages by the time its log lines arrive. Target: the overhead of a cycle
is at most 50% of the bare training time plus 8 s. The figures measured before the temporary
server booted alongside the command's own checks, and before unchanged data skipped validation,
are printed beside the new ones.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
QUIET = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "true",
         "DVC_NO_ANALYTICS": "true", "GX_ANALYTICS_ENABLED": "false"}

# The first cycle on the same 2-core machine before this version: bare training, `mlops run`, and
# the overhead (which was 245% of bare training).
BEFORE = {"bare": 14.2, "run": 49.0, "overhead": 34.8}

# Each stage ends with the last log line that matches its pattern and starts where the previous
# one ended; a stage whose line never shows (no temporary server with PREFECT_API_URL set) folds
# into the next.
STAGES = [
    ("start-up and imports", r"[Tt]emporary (Prefect )?server on"),
    ("Prefect server boot (libraries load meanwhile)", r"Beginning flow run"),
    ("validate (Great Expectations)", r"Task run 'validate-\w+' - Finished"),
    ("version (DVC)", r"Task run 'version dataset-\w+' - Finished"),
    ("open the MLflow store", r"MLflow run \w+ in experiment"),
    ("targets and folds", r"Task run 'prepare training data-\w+' - Finished"),
    ("train and log candidates", r"Task run 'log [^']+' - Finished"),
    ("register and promote", r"Task run 'register best candidate-\w+' - Finished"),
    ("report", r"Task run 'report-\w+' - Finished"),
]


def bare_training(root: Path, use_case_name: str, workers: int) -> dict[str, float]:
    """Train what a cycle trains, the way a notebook would; run in its own process."""
    started = time.perf_counter()
    from threadpoolctl import threadpool_limits

    from models.evaluation import evaluate
    from pipelines.adapters import concurrency
    from pipelines.adapters.files import read_table
    from pipelines.config import definitions
    from pipelines.config.project import Project
    from pipelines.nodes.estimators import (
        baseline_factory,
        candidate_factory,
        class_ratio,
        split_plan,
        target_values,
    )

    project = Project(root)
    spec = definitions.load(project, use_case_name)
    frame = read_table(spec.dataset_path(project), spec)
    y = target_values(spec, frame)
    plan = split_plan(spec, frame, y)
    ratio = class_ratio(spec, y[plan.final.train])
    loaded = time.perf_counter()

    def train(name):
        with threadpool_limits(limits=concurrency.thread_limits()):
            return evaluate(name, candidate_factory(spec, spec.candidates[name], ratio), frame, y, plan,
                            spec.task, list(spec.metrics)).fit_seconds

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        fit_seconds = dict(zip(spec.candidates, pool.map(train, spec.candidates), strict=True))
        for name in spec.baselines:
            evaluate(name, baseline_factory(spec, name), frame, y, plan, spec.task, list(spec.metrics))
    trained = time.perf_counter()
    return {"imports and data": loaded - started, "training": trained - loaded,
            **{f"fit {name}": seconds for name, seconds in fit_seconds.items()}}


def timed_process(command: list[str], cwd: Path,
                  env: dict[str, str]) -> tuple[float, list[tuple[float, str]]]:
    """Wall seconds of ``command`` and each output line with the second it arrived."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines = [(time.perf_counter() - started, line.rstrip("\n")) for line in process.stdout]
    if process.wait() != 0:
        sys.stdout.write("\n".join(line for _, line in lines[-40:]) + "\n")
        raise SystemExit(f"{' '.join(command)} failed with exit code {process.returncode}")
    return time.perf_counter() - started, lines


def stage_seconds(wall: float, lines: list[tuple[float, str]]) -> dict[str, float]:
    stages, previous = {}, 0.0
    for label, pattern in STAGES:
        matches = [at for at, line in lines if re.search(pattern, line)]
        if matches:
            stages[label] = matches[-1] - previous
            previous = matches[-1]
    stages["finish the flow, stop the server, exit"] = wall - previous
    return stages


def report(title: str, seconds: dict[str, float]) -> None:
    print(title)
    for label, value in seconds.items():
        print(f"  {label:<44} {value:7.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--use-case", default="marketing")
    parser.add_argument("--bare", metavar="ROOT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from pipelines.adapters.concurrency import workers as configured_workers

    workers = configured_workers()
    if args.bare:
        print(json.dumps(bare_training(Path(args.bare), args.use_case, workers)))
        return

    from tests.conftest import copy_project_files, git

    root = copy_project_files(Path(tempfile.mkdtemp()) / "project")
    git(root, "-c", "user.name=benchmark", "-c", "user.email=benchmark@localhost", "commit", "-qm", "clone")
    env = {key: value for key, value in os.environ.items()
           if key not in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "MLOPS_PROJECT")}
    env.update(QUIET, PYTHONUNBUFFERED="1", PREFECT_LOGGING_LEVEL="INFO", MLOPS_MAX_WORKERS=str(workers))
    mlops = str(Path(sys.executable).parent / "mlops")
    try:
        timed_process([mlops, "data", "pull"], root, env)
        print(f"{args.use_case}: {workers} candidates at a time, clone in {root}\n")

        bare_wall, bare_lines = timed_process([sys.executable, __file__, "--use-case", args.use_case,
                                               "--bare", str(root)], root, env)
        bare = json.loads(bare_lines[-1][1])
        report(f"bare training: {bare_wall:.2f} s in all", {"python start": bare_wall - sum(
            v for k, v in bare.items() if not k.startswith("fit ")), **bare})

        results = []
        for cycle in ("first cycle (new MLflow store)", "second cycle (unchanged data, champion scored)"):
            wall, lines = timed_process([mlops, "run", "--use-case", args.use_case, "--no-tune"], root, env)
            overhead = wall - bare_wall
            allowed = 0.5 * bare_wall + 8.0
            print()
            report(f"mlops run, {cycle}: {wall:.2f} s in all", stage_seconds(wall, lines))
            verdict = "within" if overhead <= allowed else "OVER"
            print(f"  overhead {overhead:.2f} s ({overhead / bare_wall:.0%} of bare training); "
                  f"target at most 50% of bare training + 8 s = {allowed:.2f} s: {verdict}")
            print(f"  before: bare {BEFORE['bare']:.1f} s, first cycle {BEFORE['run']:.1f} s, overhead "
                  f"{BEFORE['overhead']:.1f} s ({BEFORE['overhead'] / BEFORE['bare']:.0%})")
            results.append(overhead <= allowed)
        if not all(results):
            raise SystemExit(1)
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()

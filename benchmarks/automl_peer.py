"""The marketing cycle's best model against an AutoML peer (FLAML) at the same wall budget.

    .venv/bin/pip install -e '.[benchmark]' -c infra/constraints.txt    # FLAML and LightGBM, once
    .venv/bin/python benchmarks/automl_peer.py [--salts 5] [--flaml-budget S] [--no-tune]
                                               [--markdown] [--json results.json] [--keep]

Each holdout draw is one salt: for each, a fresh clone in a temporary folder pulls its data, sets
``split.salt`` in its ``pipelines/usecases/marketing.yaml`` (another salt, another holdout of
customers) and runs ``mlops run --use-case marketing``. From the clone's MLflow store it reads the
model the cycle would serve: the champion when the cycle promoted one, else its best candidate by
cross-validation; its ``holdout_roc_auc`` and ``holdout_capture_at_20`` are the product's figures.

FLAML then searches on exactly the cycle's training rows (rebuilt in this process with the use
case's own target and split, and checked against the row counts the cycle logged), on the raw
attributes (every column but the key and the label), with ``metric="roc_auc"`` and a time budget
of the wall seconds the cycle spent training and logging its candidates (the stage between
"prepare training data" and the last candidate logged, as benchmarks/training_overhead.py splits a
cycle; the whole command's wall time if that stage cannot be told apart; ``--flaml-budget`` to
set it). Its model is scored on the cycle's holdout with the product's own metric functions.

It prints one row per draw and a summary: mean, standard deviation, minimum and maximum of the
holdout ROC AUC and capture@20 (share of all buyers among the 20% highest scores) of both, and the
mean paired difference (product - FLAML) with its standard error. Target: the product's mean
holdout ROC AUC at least matches FLAML's; the exit code is 1 when it does not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

USE_CASE = "marketing"
DEFINITION = Path("pipelines") / "usecases" / f"{USE_CASE}.yaml"
SALT_PREFIX = "peer-"
DEFAULT_SALTS = 5
TRAINING_STAGE = "train and log candidates"  # a stage of benchmarks/training_overhead.py's STAGES
ROC_AUC, CAPTURE = "roc_auc", "capture_at_20"
# FLAML's own families less its XGBoost ones, should those fail with the installed XGBoost.
WITHOUT_XGBOOST = ["lgbm", "rf", "extra_tree", "lrl1"]
INSTALL_HINT = "install the benchmark extra: pip install -e '.[benchmark]' -c infra/constraints.txt"
STOP_GRACE_SECONDS = 30.0
OVERRUN_SHARE = 1.1  # FLAML's wall time past its budget by more than this (and a second) gets a note


class BenchmarkError(Exception):
    """One line that says what went wrong; the benchmark stops with it."""


@dataclass
class Draw:
    """One holdout draw: the cycle's model and FLAML's on the same rows."""

    salt: str
    train_rows: int = 0
    holdout_rows: int = 0
    cycle_wall: float = math.nan
    training_seconds: float = math.nan
    training_source: str = ""
    product_model: str = ""
    product_source: str = ""
    product_roc_auc: float = math.nan
    product_capture: float = math.nan
    flaml_budget: float = math.nan
    flaml_wall: float = math.nan
    flaml_model: str = ""
    flaml_estimators: list[str] = field(default_factory=list)
    """The estimators FLAML fitted within the budget; those it never reached are left out."""
    flaml_roc_auc: float = math.nan
    flaml_capture: float = math.nan
    notes: list[str] = field(default_factory=list)


# --- pure helpers ---------------------------------------------------------------------------


def salt_list(values: list[str] | None) -> list[str]:
    """``--salts``: one whole number N means "peer-1" .. "peer-N"; anything else is the salts."""
    if not values:
        values = [str(DEFAULT_SALTS)]
    if len(values) == 1 and values[0].strip().isdigit():
        count = int(values[0])
        if count < 1:
            raise BenchmarkError("--salts needs at least one draw")
        return [f"{SALT_PREFIX}{i}" for i in range(1, count + 1)]
    salts = [value for value in values if value != ""]
    if len(set(salts)) != len(salts):
        raise BenchmarkError(f"--salts repeats a salt: {' '.join(values)}")
    if not salts:
        raise BenchmarkError("--salts needs at least one non-empty salt")
    return salts


def with_salt(text: str, salt: str) -> str:
    """A use case definition's text with ``split.salt`` set to ``salt``; comments kept where possible.

    The split's one-line flow mapping (``split: {strategy: ..., holdout: 0.2}``) or its indented
    block gets the key added or replaced; any other layout is rewritten from the parsed YAML.
    The result is checked to parse to the same definition but for the salt.
    """
    original = yaml.safe_load(text)
    if not isinstance(original, dict) or not isinstance(original.get("split"), dict):
        raise BenchmarkError("the use case definition has no `split:` mapping to salt")
    wanted = {**original, "split": {**original["split"], "salt": salt}}
    quoted = json.dumps(salt)  # a JSON string is a valid YAML double-quoted scalar
    for edit in (_salted_flow, _salted_block):
        edited = edit(text, quoted)
        if edited is not None:
            try:
                if yaml.safe_load(edited) == wanted:
                    return edited
            except yaml.YAMLError:
                pass
    return yaml.safe_dump(wanted, sort_keys=False)


def _salted_flow(text: str, quoted: str) -> str | None:
    match = re.search(r"^split:[ \t]*\{([^{}\n]*)\}", text, flags=re.MULTILINE)
    if match is None:
        return None
    entries = [e.strip() for e in match.group(1).split(",") if e.strip()]
    entries = [e for e in entries if not re.match(r"['\"]?salt['\"]?\s*:", e)] + [f"salt: {quoted}"]
    return text[:match.start()] + "split: {" + ", ".join(entries) + "}" + text[match.end():]


def _salted_block(text: str, quoted: str) -> str | None:
    lines = text.splitlines(keepends=True)
    header = re.compile(r"split:[ \t]*(#.*)?$")
    start = next((i for i, line in enumerate(lines) if header.match(line.rstrip("\n"))), None)
    if start is None:
        return None
    body = []
    for i in range(start + 1, len(lines)):
        if lines[i].strip() and not lines[i][0].isspace():
            break
        body.append(i)
    indented = [i for i in body if lines[i].strip() and not lines[i].lstrip().startswith("#")]
    if not indented:
        return None
    indent = lines[indented[0]][: len(lines[indented[0]]) - len(lines[indented[0]].lstrip())]
    kept = [line for i, line in enumerate(lines)
            if not (i in body and re.match(rf"{re.escape(indent)}salt\s*:", line))]
    kept.insert(start + 1, f"{indent}salt: {quoted}\n")
    return "".join(kept)


def training_seconds(stages: dict[str, float], wall: float) -> tuple[float, str]:
    """The cycle's training wall seconds and which measure they are."""
    seconds = stages.get(TRAINING_STAGE)
    if seconds is not None and seconds > 0:
        return seconds, f"'{TRAINING_STAGE}' stage"
    return wall, "whole `mlops run` wall time (no training stage in its log)"


def cycle_run(lines: list[str]) -> tuple[str, str] | None:
    """The experiment and the parent run id that `mlops run` names at its end."""
    for line in reversed(lines):
        match = re.search(r"MLflow: experiment '([^']+)', run (\w+)", line)
        if match:
            return match.group(1), match.group(2)
    return None


def split_sizes(lines: list[str]) -> tuple[int, int] | None:
    """The training and holdout row counts the cycle logged."""
    for line in lines:
        match = re.search(r"(\d+) training rows, (\d+) holdout rows", line)
        if match:
            return int(match.group(1)), int(match.group(2))
    return None


def spread(values: list[float]) -> dict[str, float]:
    """Mean, sample standard deviation, minimum and maximum of the finite values (NaN when none)."""
    finite = [v for v in values if not math.isnan(v)]
    n = len(finite)
    if n == 0:
        return {"n": 0, "mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan}
    mean = sum(finite) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in finite) / (n - 1)) if n > 1 else math.nan
    return {"n": n, "mean": mean, "std": std, "min": min(finite), "max": max(finite)}


def paired_difference(first: list[float], second: list[float]) -> dict[str, float]:
    """Mean of ``first - second`` over the pairs where both are known, and its standard error."""
    differences = [a - b for a, b in zip(first, second, strict=True) if not (math.isnan(a) or math.isnan(b))]
    stats = spread(differences)
    stats["se"] = stats["std"] / math.sqrt(stats["n"]) if stats["n"] > 1 else math.nan
    return stats


def number(value: float, digits: int = 4) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def render(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    """A table as Markdown, or as aligned plain text; the first column left, the others right."""
    if markdown:
        rule = ["---"] + ["---:"] * (len(header) - 1)
        return "\n".join("| " + " | ".join(cells) + " |" for cells in [header, rule, *rows])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def json_safe(value: Any) -> Any:
    """NaN as null, recursively, so the file is strict JSON."""
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


# --- the cycle --------------------------------------------------------------------------------


def command_env() -> dict[str, str]:
    from benchmarks.training_overhead import QUIET

    env = {key: value for key, value in os.environ.items()
           if key not in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "MLOPS_PROJECT")}
    env.update(QUIET, PYTHONUNBUFFERED="1", PREFECT_LOGGING_LEVEL="INFO")
    return env


def run_command(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, list[tuple[float, str]]]:
    """Wall seconds of ``command`` and each output line with the second it arrived.

    The command runs in its own session; if this process stops early (Ctrl-C, an error) it is asked
    to stop (SIGTERM: `mlops` closes its runs and its temporary server), then its group is killed.
    """
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, bufsize=1, start_new_session=True)
    lines: list[tuple[float, str]] = []
    try:
        for line in process.stdout:
            lines.append((time.perf_counter() - started, line.rstrip("\n")))
        code = process.wait()
    finally:
        _stop(process)
    wall = time.perf_counter() - started
    if code != 0:
        sys.stdout.write("\n".join(line for _, line in lines[-40:]) + "\n")
        shown = " ".join([Path(command[0]).name, *command[1:]])
        raise BenchmarkError(f"`{shown}` failed with exit code {code} (its last lines are above)")
    return wall, lines


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_GRACE_SECONDS)
    with contextlib.suppress(OSError):
        os.killpg(process.pid, signal.SIGKILL)  # whatever it left in its group
    if process.stdout:
        process.stdout.close()
    process.wait()


def mlops_command() -> str:
    return str(Path(sys.executable).parent / "mlops")


def make_clone(salt: str) -> Path:
    from tests.conftest import copy_project_files, git

    root = copy_project_files(Path(tempfile.mkdtemp(prefix="automl-peer-")) / "project")
    definition = root / DEFINITION
    definition.write_text(with_salt(definition.read_text(), salt))
    git(root, "-c", "user.name=benchmark", "-c", "user.email=benchmark@localhost", "commit", "-qm", "clone")
    return root


def salted_use_case(root: Path, salt: str) -> Any:
    from pipelines.config import definitions

    use_case = definitions.parse(root / DEFINITION)
    if getattr(use_case.split, "salt", None) != salt:
        raise BenchmarkError(f"{DEFINITION}: split.salt did not take ({salt!r}); this version of the "
                             "product has no split salt")
    return use_case


def product_model(root: Path, use_case: Any, lines: list[str], draw: Draw) -> None:
    """The champion the cycle promoted, else its best candidate by CV: its holdout metrics into ``draw``."""
    from mlflow import MlflowClient

    from models.metrics import get_metric
    from models.promotion import DECISION_TAG, PROMOTED
    from pipelines.adapters.registry import CHAMPION
    from pipelines.adapters.tracker import STORE_FILE, TAG_CANDIDATE, TAG_ROLE

    uri = f"sqlite:///{root / STORE_FILE}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    named = cycle_run(lines)
    if named is None:
        raise BenchmarkError("`mlops run` named no MLflow run at its end")
    experiment_name, cycle_id = named
    experiment = client.get_experiment_by_name(experiment_name)
    cycle = client.get_run(cycle_id)
    candidates = client.search_runs(
        [experiment.experiment_id], max_results=1000,
        filter_string=f"tags.mlflow.parentRunId = '{cycle_id}' and tags.{TAG_ROLE} = 'candidate'")
    by_name = {run.data.tags.get(TAG_CANDIDATE, run.info.run_name): run for run in candidates}
    decision = cycle.data.tags.get(DECISION_TAG, "none")
    chosen = None
    if decision == PROMOTED:
        version = client.get_model_version_by_alias(use_case.registered_model, CHAMPION)
        chosen = next((run for run in candidates if run.info.run_id == version.run_id), None)
        if chosen is not None:
            draw.product_source = f"champion (v{version.version})"
    if chosen is None:
        primary = get_metric(use_case.task, use_case.primary_metric)
        key = f"cv_{use_case.primary_metric}"
        scored = [run for run in candidates if not math.isnan(run.data.metrics.get(key, math.nan))]
        if not scored:
            raise BenchmarkError(f"no candidate run of cycle {cycle_id} has {key}")
        chosen = (max if primary.greater_is_better else min)(scored, key=lambda run: run.data.metrics[key])
        draw.product_source = f"best by {key} (decision: {decision})"
    draw.product_model = next(name for name, run in by_name.items() if run is chosen)
    metrics = chosen.data.metrics
    draw.product_roc_auc = metrics.get(f"holdout_{ROC_AUC}", math.nan)
    draw.product_capture = metrics.get(f"holdout_{CAPTURE}", math.nan)


# --- FLAML ------------------------------------------------------------------------------------


def check_flaml() -> None:
    import importlib.util

    missing = [name for name in ("flaml", "lightgbm") if importlib.util.find_spec(name) is None]
    if missing:
        raise BenchmarkError(f"{' and '.join(missing)} not installed; {INSTALL_HINT}")


def peer_rows(root: Path, use_case: Any) -> tuple[Any, Any, Any]:
    """The raw attributes, the target and the split plan, as the cycle builds them from its CSV."""
    from pipelines.adapters.files import read_table
    from pipelines.config.project import Project
    from pipelines.nodes.estimators import split_plan, target_values

    frame = read_table(use_case.dataset_path(Project(root)), use_case)
    y = target_values(use_case, frame)
    plan = split_plan(use_case, frame, y)
    left_out = [c for c in dict.fromkeys((*use_case.key, *use_case.non_inputs)) if c in frame.columns]
    if use_case.target_is_column and use_case.target in frame.columns:
        left_out.append(use_case.target)
    return frame.drop(columns=left_out), y, plan


def flaml_fit(x_train: Any, y_train: Any, budget: float, seed: int,
              estimators: list[str] | None) -> tuple[Any, list[str], str]:
    """FLAML's AutoML fitted within ``budget`` seconds; the estimators it fitted, and a note."""
    import logging

    from flaml import AutoML

    logging.getLogger("flaml").setLevel(logging.ERROR)

    def fit(estimator_list: list[str] | str) -> Any:
        automl = AutoML()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            automl.fit(x_train, y_train, task="classification", metric="roc_auc", time_budget=budget,
                       seed=seed, verbose=0, estimator_list=estimator_list)
        return automl

    try:
        automl = fit(estimators or "auto")
        note = ""
    except Exception as exc:  # noqa: BLE001 - retried without XGBoost, and said so
        if estimators:
            raise BenchmarkError(f"FLAML failed: {type(exc).__name__}: {exc}") from None
        automl = fit(WITHOUT_XGBOOST)
        note = (f"FLAML failed with its default estimators ({type(exc).__name__}: {str(exc)[:120]}); "
                f"restricted to {', '.join(WITHOUT_XGBOOST)}")
    fitted = [name for name, loss in automl.best_loss_per_estimator.items() if math.isfinite(loss)]
    return automl, fitted, note


def flaml_peer(root: Path, use_case: Any, draw: Draw, seed: int, estimators: list[str] | None) -> None:
    from models.metrics import get_metric

    x, y, plan = peer_rows(root, use_case)
    train, holdout = plan.final.train, plan.final.test
    if (draw.train_rows, draw.holdout_rows) != (len(train), len(holdout)):
        raise BenchmarkError(f"salt {draw.salt}: the rebuilt split has {len(train)} training and "
                             f"{len(holdout)} holdout rows, the cycle logged {draw.train_rows} and "
                             f"{draw.holdout_rows}")
    started = time.perf_counter()
    automl, draw.flaml_estimators, note = flaml_fit(x.iloc[train], y[train].astype(int), draw.flaml_budget,
                                                    seed, estimators)
    draw.flaml_wall = time.perf_counter() - started
    if note:
        draw.notes.append(note)
    if draw.flaml_wall > OVERRUN_SHARE * draw.flaml_budget + 1.0:
        draw.notes.append(f"FLAML took {draw.flaml_wall:.1f} s for a {draw.flaml_budget:.1f} s budget: its "
                          "last trial and its final refit on all training rows may run past it")
    draw.flaml_model = str(automl.best_estimator)
    scores = automl.predict_proba(x.iloc[holdout])[:, 1]
    draw.flaml_roc_auc = get_metric("classification", ROC_AUC)(y[holdout], scores)
    draw.flaml_capture = get_metric("classification", CAPTURE)(y[holdout], scores)


# --- one draw, and all of them ------------------------------------------------------------------


def measure(salt: str, args: argparse.Namespace, env: dict[str, str], prefix: str) -> Draw:
    from benchmarks.training_overhead import stage_seconds

    draw = Draw(salt)
    root = make_clone(salt)
    try:
        print(f"{prefix} salt {salt!r}: clone in {root}", flush=True)
        run_command([mlops_command(), "data", "pull"], root, env)
        use_case = salted_use_case(root, salt)
        command = [mlops_command(), "run", "--use-case", USE_CASE, *(["--no-tune"] if args.no_tune else [])]
        print(f"{prefix} {' '.join(['mlops', *command[1:]])} ...", flush=True)
        wall, timed = run_command(command, root, env)
        lines = [line for _, line in timed]
        draw.cycle_wall = wall
        draw.training_seconds, draw.training_source = training_seconds(stage_seconds(wall, timed), wall)
        sizes = split_sizes(lines)
        if sizes is None:
            raise BenchmarkError("`mlops run` logged no 'N training rows, M holdout rows' line")
        draw.train_rows, draw.holdout_rows = sizes
        product_model(root, use_case, lines, draw)
        print(f"{prefix} cycle {wall:.1f} s, training {draw.training_seconds:.1f} s "
              f"(the {draw.training_source}); {draw.product_model}, {draw.product_source}: "
              f"holdout roc_auc {number(draw.product_roc_auc)}, capture@20 {number(draw.product_capture)}",
              flush=True)

        draw.flaml_budget = args.flaml_budget if args.flaml_budget else draw.training_seconds
        print(f"{prefix} FLAML on the same {draw.train_rows} training rows, "
              f"budget {draw.flaml_budget:.1f} s ...", flush=True)
        flaml_peer(root, use_case, draw, args.seed, args.flaml_estimators)
        print(f"{prefix} FLAML {draw.flaml_wall:.1f} s, best {draw.flaml_model}: holdout roc_auc "
              f"{number(draw.flaml_roc_auc)}, capture@20 {number(draw.flaml_capture)}", flush=True)
        for note in draw.notes:
            print(f"{prefix} note: {note}", flush=True)
    finally:
        if args.keep:
            print(f"{prefix} kept {root}", flush=True)
        else:
            shutil.rmtree(root.parent, ignore_errors=True)
    return draw


def summary(draws: list[Draw]) -> dict[str, Any]:
    product_auc = [d.product_roc_auc for d in draws]
    flaml_auc = [d.flaml_roc_auc for d in draws]
    product_capture = [d.product_capture for d in draws]
    flaml_capture = [d.flaml_capture for d in draws]
    result = {
        "product_roc_auc": spread(product_auc), "flaml_roc_auc": spread(flaml_auc),
        "product_capture_at_20": spread(product_capture), "flaml_capture_at_20": spread(flaml_capture),
        "difference_roc_auc": paired_difference(product_auc, flaml_auc),
        "difference_capture_at_20": paired_difference(product_capture, flaml_capture),
        "product_training_seconds": spread([d.training_seconds for d in draws]),
        "flaml_wall_seconds": spread([d.flaml_wall for d in draws]),
    }
    product_mean, flaml_mean = result["product_roc_auc"]["mean"], result["flaml_roc_auc"]["mean"]
    result["target_met"] = (not math.isnan(product_mean) and not math.isnan(flaml_mean)
                            and product_mean >= flaml_mean)
    return result


def report(draws: list[Draw], stats: dict[str, Any], markdown: bool, no_tune: bool) -> None:
    rows = [[d.salt, f"{d.product_model} ({d.product_source.split(' (')[0]})", number(d.product_roc_auc),
             number(d.product_capture), f"{d.training_seconds:.1f}", d.flaml_model, number(d.flaml_roc_auc),
             number(d.flaml_capture), f"{d.flaml_wall:.1f}", number(d.product_roc_auc - d.flaml_roc_auc)]
            for d in draws]
    header = ["salt", "product model", "product roc_auc", "product capture@20", "product train s",
              "FLAML best", "FLAML roc_auc", "FLAML capture@20", "FLAML s", "roc_auc diff"]
    print(f"\nmarketing holdout, product {'without tuning (--no-tune)' if no_tune else 'as defined'} "
          f"against FLAML at the same wall budget")
    print(render(header, rows, markdown))

    def cells(name: str, key: str) -> list[str]:
        s = stats[key]
        return [name, str(s["n"]), number(s["mean"]), number(s["std"]), number(s["min"]), number(s["max"])]

    print()
    print(render(["over the draws", "n", "mean", "std", "min", "max"], [
        cells("product roc_auc", "product_roc_auc"), cells("FLAML roc_auc", "flaml_roc_auc"),
        cells("product capture@20", "product_capture_at_20"),
        cells("FLAML capture@20", "flaml_capture_at_20"),
    ], markdown))
    print()
    diff_rows = []
    for label, key in (("roc_auc", "difference_roc_auc"), ("capture@20", "difference_capture_at_20")):
        s = stats[key]
        diff_rows.append([f"product - FLAML, {label}", str(s["n"]), number(s["mean"]), number(s["se"]),
                          number(s["min"]), number(s["max"])])
    print(render(["paired difference", "n", "mean", "standard error", "min", "max"], diff_rows, markdown))

    sources = sorted({d.training_source for d in draws})
    print(f"\nbudget: FLAML's time_budget was the product's training seconds: the {' / '.join(sources)}"
          if not any(d.flaml_budget != d.training_seconds for d in draws)
          else f"\nbudget: FLAML's time_budget was set by --flaml-budget ({draws[0].flaml_budget:g} s); the "
               f"product's training seconds are its {' / '.join(sources)}")
    promoted = sum(d.product_source.startswith("champion") for d in draws)
    print(f"product figures: the champion the cycle promoted in {promoted} of {len(draws)} draws, "
          "else its best candidate by cross-validation")
    fitted = sorted({e for d in draws for e in d.flaml_estimators})
    print(f"FLAML fitted within its budget: {', '.join(fitted) or 'n/a'}")
    for d in draws:
        for note in d.notes:
            print(f"note ({d.salt}): {note}")
    verdict = "met" if stats["target_met"] else "NOT met"
    single = " (one draw: no spread)" if len(draws) == 1 else ""
    print(f"target: mean holdout ROC AUC of the product ({number(stats['product_roc_auc']['mean'])}) "
          f"at least FLAML's ({number(stats['flaml_roc_auc']['mean'])}): {verdict}{single}")


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--salts", nargs="+", metavar="N|SALT",
                        help=f"number of holdout draws (salts {SALT_PREFIX}1 ..), or the salts themselves "
                             f"(default: {DEFAULT_SALTS})")
    parser.add_argument("--flaml-budget", type=float, metavar="S",
                        help="FLAML's time budget in seconds (default: the cycle's training seconds)")
    parser.add_argument("--flaml-estimators", type=lambda s: [e.strip() for e in s.split(",") if e.strip()],
                        metavar="A,B", help="FLAML's estimator_list (default: FLAML's own)")
    parser.add_argument("--seed", type=int, default=0, help="FLAML's seed (default: 0)")
    parser.add_argument("--no-tune", action="store_true", help="pass --no-tune to `mlops run`")
    parser.add_argument("--keep", action="store_true", help="keep the temporary clones")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every draw and the summary as JSON")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupted)  # stopped like Ctrl-C: the cycle and the clone cleaned up
    try:
        salts = salt_list(args.salts)
        if args.flaml_budget is not None and args.flaml_budget <= 0:
            raise BenchmarkError("--flaml-budget must be a positive number of seconds")
        check_flaml()
        env = command_env()
        draws = []
        for i, salt in enumerate(salts, start=1):
            draws.append(measure(salt, args, env, f"[{i}/{len(salts)}]"))
    except BenchmarkError as exc:
        raise SystemExit(f"automl_peer: {exc}") from None
    except KeyboardInterrupt:
        raise SystemExit("automl_peer: interrupted") from None
    stats = summary(draws)
    report(draws, stats, args.markdown, args.no_tune)
    if args.json:
        settings = {"use_case": USE_CASE, "salts": salts, "flaml_budget": args.flaml_budget,
                    "seed": args.seed, "no_tune": args.no_tune, "flaml_estimators": args.flaml_estimators}
        args.json.write_text(json.dumps(json_safe({"settings": settings, "draws": [asdict(d) for d in draws],
                                                   "summary": stats}), indent=2) + "\n")
        print(f"results written to {args.json}")
    if not stats["target_met"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

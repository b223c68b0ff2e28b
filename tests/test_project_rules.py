"""Rules of the code base that a reviewer would otherwise check by hand."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SERVICE_LIBRARIES = {"prefect", "mlflow", "dvc", "great_expectations"}
LAYERS = ("config", "nodes", "adapters", "flows", "cli")
# Which layers of pipelines/ each layer may import, and which service libraries it may talk to.
ALLOWED_LAYERS = {
    "config": {"config"},
    "nodes": {"config", "nodes"},
    "adapters": {"config", "nodes", "adapters"},
    "flows": {"config", "nodes", "adapters", "flows"},
    "cli": {"config", "flows", "cli"},
}
ALLOWED_SERVICES = {"config": set(), "nodes": set(), "adapters": SERVICE_LIBRARIES, "flows": {"prefect"},
                    "cli": set()}
LONGEST_FLOW_FUNCTION = 40


def imported_modules(path: Path) -> list[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "pipelines" and len(parts) > 1 and parts[1] in LAYERS else None


def test_features_and_models_are_pure():
    offenders = []
    for package in ("features", "models"):
        for path in (REPO / package).rglob("*.py"):
            offenders += [f"{path.relative_to(REPO)}: {name}" for name in imported_modules(path)
                          if name.split(".")[0] in {*SERVICE_LIBRARIES, "pipelines"}]
    assert offenders == []


def test_no_flow_module_shadows_a_top_level_package():
    """Prefect loads a deployed flow's file as a script, with its folder first on the import path."""
    top_level = {p.name for p in REPO.iterdir() if (p / "__init__.py").is_file()}
    clashes = [p.name for p in (REPO / "pipelines" / "flows").glob("*.py") if p.stem in top_level]
    assert clashes == []


def test_every_module_of_pipelines_belongs_to_a_layer():
    loose = [p.name for p in (REPO / "pipelines").glob("*.py") if p.name != "__init__.py"]
    assert loose == []


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_point_one_way(layer):
    """cli -> flows -> adapters -> nodes -> config; only adapters talk to services (flows to Prefect)."""
    offenders = []
    for path in (REPO / "pipelines" / layer).rglob("*.py"):
        for name in imported_modules(path):
            target = layer_of(name)
            if target is not None and target not in ALLOWED_LAYERS[layer]:
                offenders.append(f"{path.relative_to(REPO)} imports {name}")
            if name.split(".")[0] in SERVICE_LIBRARIES - ALLOWED_SERVICES[layer]:
                offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert offenders == []


def test_flows_only_wire():
    long = []
    for path in (REPO / "pipelines" / "flows").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > LONGEST_FLOW_FUNCTION:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({length} lines)")
    assert long == []


def test_the_readme_documents_every_setting():
    from pipelines.config.settings import Settings

    readme = (REPO / "README.md").read_text()
    missing = [name for name, _, _ in Settings.variables() if f"`{name}`" not in readme]
    assert missing == []


def test_ruff_clean():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise",
                           str(REPO)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


def test_help_is_fast_because_heavy_libraries_load_lazily():
    probe = ("import sys, pipelines.cli; "
             "print(sorted(m for m in ('prefect', 'mlflow', 'great_expectations', 'dvc', 'torch') "
             "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_flows_leave_heavy_libraries_for_the_server_boot():
    """Commands import their flows before a temporary Prefect server starts; what loads meanwhile
    (plots, tracking, validation, the model libraries) must not load before it."""
    probe = ("import sys, pipelines.flows.cycle, pipelines.flows.predict, pipelines.flows.data; "
             "print(sorted(m for m in ('matplotlib', 'mlflow', 'great_expectations', 'torch', 'xgboost', "
             "'dvc') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_help_waits_for_no_settings_or_schema_library():
    """`mlops --help` runs the command line and its session set-up; settings load when first needed."""
    probe = ("import sys, pipelines.cli, pipelines.flows.session; "
             "print(sorted(m for m in ('pydantic', 'pydantic_settings', 'sklearn', 'pandas') "
             "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"

"""Use cases are data: one YAML definition each under ``pipelines/usecases/``.

Adding a use case means adding a definition, its expectation suite and its CSV;
no flow changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipelines.errors import UseCaseError
from pipelines.project import Project


@dataclass(frozen=True)
class RowOrder:
    """Rows must be strictly increasing in ``column`` within each value of ``within``."""

    column: str
    within: str | None = None

    @property
    def previous_column(self) -> str:
        """Name of the derived column that holds each row's predecessor value."""
        scope = f" of the same {self.within}" if self.within else ""
        return f"previous {self.column}{scope}"


def parsed_date_column(column: str) -> str:
    """Name of the derived column that holds ``column`` parsed as a date."""
    return f"{column} (as date)"


@dataclass(frozen=True)
class UseCase:
    name: str
    description: str
    dataset: str
    expectations: str
    key: tuple[str, ...]
    min_rows: int
    order: RowOrder | None = None
    text_columns: tuple[str, ...] = ()
    date_columns: dict[str, str] = field(default_factory=dict)
    """Date columns and their strftime format; kept as text, checked through a parsed copy."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Everything beyond the data layer (target, task, candidates, ...), as written."""

    def dataset_path(self, project: Project) -> Path:
        return project.data_dir / self.dataset

    def expectations_path(self, project: Project) -> Path:
        return project.expectations_dir / self.expectations

    @property
    def string_columns(self) -> tuple[str, ...]:
        """Columns read as text so that codes such as '007' or dates keep their spelling."""
        order = (self.order.column,) if self.order else ()
        return tuple(dict.fromkeys((*self.key, *order, *self.date_columns, *self.text_columns)))


_DATA_FIELDS = {
    "name", "description", "dataset", "expectations", "key", "min_rows", "order",
    "text_columns", "date_columns",
}


def _parse(path: Path) -> UseCase:
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UseCaseError(f"use case definition {path} is not valid YAML: {exc}") from exc
    missing = [k for k in ("dataset", "expectations", "key") if k not in raw]
    if missing:
        raise UseCaseError(f"use case definition {path} lacks {', '.join(missing)}")
    order = raw.get("order")
    key = raw["key"]
    return UseCase(
        name=raw.get("name", path.stem),
        description=raw.get("description", ""),
        dataset=raw["dataset"],
        expectations=raw["expectations"],
        key=tuple([key] if isinstance(key, str) else key),
        min_rows=int(raw.get("min_rows", 1)),
        order=RowOrder(**order) if order else None,
        text_columns=tuple(raw.get("text_columns", ())),
        date_columns=dict(raw.get("date_columns", {})),
        settings={k: v for k, v in raw.items() if k not in _DATA_FIELDS},
    )


def available(project: Project) -> list[str]:
    return sorted(p.stem for p in project.usecases_dir.glob("*.yaml"))


def load(project: Project, name: str) -> UseCase:
    path = project.usecases_dir / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(available(project)) or "none defined"
        raise UseCaseError(f"unknown use case '{name}' (available: {known})")
    return _parse(path)


def resolve(project: Project, name: str) -> list[UseCase]:
    """``all`` means every defined use case, in name order."""
    if name == "all":
        return [load(project, n) for n in available(project)]
    return [load(project, name)]

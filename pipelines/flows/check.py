"""`mlops check`: every definition, its suite, its callables and its candidates, without training."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.adapters import files
from pipelines.adapters import great_expectations as validation
from pipelines.config import definitions
from pipelines.config.errors import BadInputError, UseCaseError
from pipelines.config.project import Project
from pipelines.config.usecase import UseCase
from pipelines.nodes.checks import build_problems, data_problems


@dataclass(frozen=True)
class CheckResult:
    use_case: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What was checked, or skipped and why."""


def check(project: Project, use_case_name: str) -> list[CheckResult]:
    names = definitions.available(project) if use_case_name == "all" else [use_case_name]
    if use_case_name != "all":
        definitions.load(project, use_case_name)  # an unknown name is the command's error
    return [check_one(project, name) for name in names]


def check_one(project: Project, name: str) -> CheckResult:
    try:
        use_case = definitions.load(project, name)
    except UseCaseError as exc:
        return CheckResult(name, exc.problems)
    problems = validation.suite_problems(project, use_case)
    frame, notes = _data(project, use_case)
    if frame is not None:
        problems += data_problems(use_case, frame)
    problems += build_problems(use_case, frame)
    notes.append(f"built {_count(len(use_case.candidates), 'candidate')} and "
                 f"{_count(len(use_case.baselines), 'baseline')}")
    return CheckResult(name, problems, notes)


def _data(project: Project, use_case: UseCase) -> tuple[object, list[str]]:
    path = use_case.dataset_path(project)
    if not path.exists():
        return None, [f"data checks skipped: {path.relative_to(project.root)} is not here "
                      "(`mlops data pull` restores it)"]
    try:
        frame = files.read_table(path, use_case)
    except BadInputError as exc:
        return None, [f"data checks skipped: {exc}"]
    return frame, [f"data: {len(frame)} rows of {use_case.dataset}"]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"

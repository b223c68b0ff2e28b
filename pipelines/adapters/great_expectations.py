"""The Great Expectations gate: a use case's suite run on a table, and a readable report.

Great Expectations is imported lazily (it costs seconds) and kept quiet.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from pipelines.config.errors import UseCaseError
from pipelines.config.project import Project
from pipelines.config.usecase import UseCase, parsed_date_column

EXAMPLES_SHOWN = 5
_COLUMN_SET = "expect_table_columns_to_match_set"


@dataclass
class Failure:
    expectation: str
    description: str
    columns: list[str]
    unexpected_count: int | None = None
    examples: list[Any] = field(default_factory=list)
    observed: Any = None
    error: str | None = None

    def line(self) -> str:
        parts = [self.description]
        if self.unexpected_count is not None:
            parts.append(f"{self.unexpected_count} bad row(s)")
        if self.examples:
            parts.append("e.g. " + ", ".join(_show(v) for v in self.examples))
        elif self.observed is not None:
            parts.append(f"observed {_show(self.observed)}")
        if self.error:
            parts.append(f"could not be checked: {self.error}")
        return "; ".join(parts)


@dataclass
class ValidationReport:
    use_case: str
    subject: str
    """What was checked: 'batch' (the file alone) or 'merged' (the dataset with the batch)."""
    source: str
    rows: int
    evaluated: int
    failures: list[Failure]
    checked_at: str
    docs_path: str | None = None
    docs_updated: bool = False
    """Whether this check's result is in the Data Docs: failed checks and those asked for are."""
    scope: str | None = None
    """Which part of the suite was evaluated, when not all of it."""

    @property
    def success(self) -> bool:
        return not self.failures

    def headline(self) -> str:
        what = f"{self.use_case} {self.subject} {Path(self.source).name} ({self.rows} rows)"
        if self.success:
            scope = f" {self.scope}" if self.scope else ""
            return f"{what}: passed all {self.evaluated} expectations{scope}"
        return (f"{what}: {len(self.failures)} of {self.evaluated} expectations failed; "
                f"first: {self.failures[0].line()}")

    def render(self) -> str:
        lines = [self.headline()]
        lines += [f"  x {failure.line()}" for failure in self.failures]
        if self.docs_path and self.docs_updated:
            lines.append(f"  Data Docs: {self.docs_path}")
        elif self.docs_path:
            lines.append(f"  Data Docs: {self.docs_path} (updated when a check fails, or with --docs)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self) | {"success": self.success}, default=str))


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    if isinstance(value, dict):
        return "(" + ", ".join(f"{k}={_show(v)}" for k, v in value.items()) + ")"
    return repr(value) if isinstance(value, str) else str(value)


def _bound(value: Any) -> str:
    return value if isinstance(value, str) else _show(value)


def load_suite(project: Project, use_case: UseCase) -> dict[str, Any]:
    path = use_case.expectations_path(project)
    if not path.is_file():
        raise UseCaseError(f"use case '{use_case.name}': expectation suite {path} not found")
    suite = yaml.safe_load(path.read_text())
    if not isinstance(suite, dict) or not suite.get("expectations"):
        raise UseCaseError(f"{path}: no expectations listed")
    return suite


def suite_problems(project: Project, use_case: UseCase) -> list[str]:
    """What is wrong with the use case's suite, one line each, without validating any data."""
    try:
        suite = load_suite(project, use_case)
    except (UseCaseError, yaml.YAMLError) as exc:
        return [str(exc).splitlines()[0]]
    _quiet_gx()
    from great_expectations.exceptions import GreatExpectationsError
    from great_expectations.expectations.registry import get_expectation_impl

    where = f"expectations/{use_case.expectations}"
    problems, declared = [], None
    for number, item in enumerate(suite["expectations"], start=1):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            problems.append(f"{where}: expectation {number} needs a 'type' and 'kwargs'")
            continue
        try:
            get_expectation_impl(item["type"])
        except GreatExpectationsError:
            problems.append(f"{where}: expectation {number}: unknown type '{item['type']}'")
        if item["type"] == _COLUMN_SET:
            declared = set(item.get("kwargs", {}).get("column_set", []))
    if declared is None:
        return problems
    derived = {parsed_date_column(c) for c in use_case.date_columns}
    if use_case.order:
        derived.add(use_case.order.previous_column)
    needed = [*use_case.key, *([use_case.target] if use_case.target_is_column else [])]
    problems += [f"{where}: column '{c}' of the definition is not in the suite's column set"
                 for c in needed if c not in declared]
    mentioned = {c for item in suite["expectations"] if isinstance(item, dict)
                 for c in _columns_of(item.get("kwargs") or {})}
    problems += [f"{where}: an expectation checks column '{c}', which is not in the column set"
                 for c in sorted(mentioned - declared - derived)]
    return problems


def without_columns(suite: dict[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    """The suite minus every expectation on ``columns``, and with them out of the column set."""
    omitted = set(columns)
    kept = []
    for item in suite["expectations"]:
        kwargs = item.get("kwargs", {})
        if item["type"] == _COLUMN_SET:
            kept.append({**item, "kwargs": {
                **kwargs, "column_set": [c for c in kwargs["column_set"] if c not in omitted]}})
        elif not omitted & set(_columns_of(kwargs)):
            kept.append(item)
    return {**suite, "expectations": kept}


def checkable_frame(frame: pd.DataFrame, use_case: UseCase) -> pd.DataFrame:
    """The table plus the derived columns the suite checks: parsed dates, each row's predecessor."""
    checked = frame.copy()
    for column, date_format in use_case.date_columns.items():
        if column in checked.columns:
            checked[parsed_date_column(column)] = pd.to_datetime(
                checked[column], format=date_format, errors="coerce"
            )
    order = use_case.order
    if order and order.column in checked.columns and (not order.within or order.within in checked):
        values = checked.get(parsed_date_column(order.column), checked[order.column])
        if order.within:
            checked[order.previous_column] = values.groupby(checked[order.within]).shift(1)
        else:
            checked[order.previous_column] = values.shift(1)
    return checked


def _derived_columns(frame: pd.DataFrame, checked: pd.DataFrame) -> list[str]:
    return [c for c in checked.columns if c not in frame.columns]


# --- Great Expectations -------------------------------------------------------------------

_context_cache: dict[Path, Any] = {}


def _quiet_gx() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    for name in ("great_expectations", "great_expectations.core", "posthog"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _context(project: Project) -> Any:
    """A file-backed Great Expectations context under .mlops/, so Data Docs persist."""
    root = project.state_dir
    if root not in _context_cache:
        _quiet_gx()
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        root.mkdir(parents=True, exist_ok=True)
        context = gx.get_context(mode="file", project_root_dir=str(root))
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        _context_cache[root] = context
    return _context_cache[root]


def _gx_suite(context: Any, name: str, suite: dict[str, Any], derived: list[str]) -> Any:
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    gx_suite = gx.ExpectationSuite(name=name)
    for item in suite["expectations"]:
        kwargs = dict(item.get("kwargs", {}))
        meta = dict(item.get("meta", {}))
        if item["type"] == _COLUMN_SET:
            # Derived check columns are ours, not the file's: accept them without listing them.
            meta["declared_columns"] = list(kwargs["column_set"])
            kwargs["column_set"] = [*kwargs["column_set"], *derived]
        gx_suite.add_expectation_configuration(
            ExpectationConfiguration(type=item["type"], kwargs=kwargs, meta=meta)
        )
    return _add(context.suites, gx_suite)


def _add(store: Any, item: Any) -> Any:
    """Save a new suite, validation definition or checkpoint.

    ``add`` first: ``add_or_update`` compares against what is stored, seconds for a large suite,
    and names carry the suite's fingerprint, so they are new unless an earlier run was cut short.
    """
    from great_expectations.exceptions import GreatExpectationsError

    try:
        return store.add(item)
    except GreatExpectationsError:
        return store.add_or_update(item)


def _asset(context: Any, use_case: str, subject: str) -> Any:
    try:
        source = context.data_sources.get(use_case)
    except (KeyError, ValueError, LookupError):
        source = context.data_sources.add_pandas(use_case)
    try:
        asset = source.get_asset(subject)
    except LookupError:
        asset = source.add_dataframe_asset(subject)
    try:
        return asset.get_batch_definition("whole table")
    except (KeyError, ValueError, LookupError):
        return asset.add_batch_definition_whole_dataframe("whole table")


def _checkpoint(project: Project, use_case: UseCase, subject: str, suite: dict[str, Any],
                derived: list[str]) -> Any:
    """The stored checkpoint for this exact suite, created on first use.

    Names carry a fingerprint of the suite, so an unchanged suite is looked up rather than
    re-saved: Great Expectations' add_or_update diffs every expectation, seconds for large suites.
    """
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.exceptions import DataContextError

    context = _context(project)
    fingerprint = hashlib.sha256(
        json.dumps([suite, derived], sort_keys=True, default=str).encode()
    ).hexdigest()[:10]
    name = f"{use_case.name}-{subject}-{fingerprint}"
    try:
        return context.checkpoints.get(name)
    except DataContextError:
        pass
    definition = _add(
        context.validation_definitions,
        gx.ValidationDefinition(
            name=name,
            data=_asset(context, use_case.name, subject),
            suite=_gx_suite(context, name, suite, derived),
        ),
    )
    return _add(
        context.checkpoints,
        gx.Checkpoint(
            name=name,
            validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="update_data_docs")],
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLES_SHOWN},
        ),
    )


def run_suite(
    project: Project,
    use_case: UseCase,
    frame: pd.DataFrame,
    *,
    subject: str,
    source: str,
    min_rows: int,
    omit_columns: Sequence[str] = (),
    docs: bool = False,
    only: Callable[[dict[str, Any]], bool] | None = None,
) -> ValidationReport:
    """Validate ``frame`` with the use case's suite.

    The result is stored and the Data Docs are updated when a check fails or ``docs`` asks for
    it: rendering them costs about a second, and a passing check has nothing to show there.
    ``omit_columns`` (e.g. the label of a file to score) are neither required nor checked: a frame
    may have them or not. The reduced suite has its own fingerprint, hence its own checkpoint;
    so has the part of the suite that ``only`` selects.
    """
    suite = load_suite(project, use_case)
    if omit_columns:
        suite = without_columns(suite, omit_columns)
        frame = frame.drop(columns=[c for c in omit_columns if c in frame.columns])
    if only is not None:
        suite = {**suite, "expectations": [item for item in suite["expectations"] if only(item)]}
    checked = checkable_frame(frame, use_case)
    checkpoint = _checkpoint(project, use_case, subject, suite, _derived_columns(frame, checked))
    # The end of the current UTC day: a bar dated today is not in the future.
    end_of_today = f"{datetime.now(UTC).date().isoformat()}T23:59:59"
    run = {"batch_parameters": {"dataframe": checked},
           "expectation_parameters": {"min_rows": min_rows, "today": end_of_today}}
    outcome = None if docs else _validate_only(checkpoint, run)
    updated = outcome is None or not outcome.success
    if updated:
        result = checkpoint.run(**run)
        outcome = next(iter(result.run_results.values()))
    return ValidationReport(
        use_case=use_case.name,
        subject=subject,
        source=str(source),
        rows=len(frame),
        evaluated=len(outcome.results),
        failures=_failures(outcome.results, frame),
        checked_at=datetime.now(UTC).isoformat(timespec="seconds"),
        docs_path=docs_location(project),
        docs_updated=updated,
    )


def _validate_only(checkpoint: Any, run: dict[str, Any]) -> Any:
    """Whether each expectation holds, without storing the result or touching the Data Docs.

    Only pass or fail: without the examples of bad rows (the checkpoint's run gives them when
    something fails) Great Expectations resolves half the metrics.
    """
    from great_expectations.validator.v1_validator import Validator

    definition = checkpoint.validation_definitions[0]
    validator = Validator(batch_definition=definition.batch_definition,
                          batch_parameters=run["batch_parameters"], result_format="BOOLEAN_ONLY")
    return validator.validate_expectation_suite(definition.suite, run["expectation_parameters"])


def docs_location(project: Project) -> str | None:
    """Where the Data Docs' index page is (built on the first failed or ``docs`` check)."""
    docs = _context(project).get_docs_sites_urls(only_if_exists=False)
    url = docs[0]["site_url"] if docs else None
    return url.removeprefix("file://") if url else None


# --- what a merged table needs checked when its parts were validated ------------------------

# Expectations that hold for a table when they hold for each of its parts: each row is judged on
# its own (a ``mostly`` share of rows too, as a weighted mean), or the columns are the same.
_ROW_BY_ROW = frozenset({
    _COLUMN_SET,
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_null",
    "expect_column_values_to_be_in_type_list",
    "expect_column_values_to_be_of_type",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set",
    "expect_column_values_to_be_between",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_not_match_regex",
    "expect_column_values_to_match_strftime_format",
    "expect_column_value_lengths_to_be_between",
    "expect_column_pair_values_a_to_be_greater_than_b",
    "expect_column_pair_values_to_be_equal",
})


def spans_rows(item: dict[str, Any], use_case: UseCase) -> bool:
    """Whether an expectation relates rows to one another (keys, order) or to the table's size,
    so that a table appended to must be checked for it whole."""
    if item.get("type") not in _ROW_BY_ROW:
        return True
    # Each row's predecessor may lie across the boundary between the parts.
    return bool(use_case.order) and use_case.order.previous_column in _columns_of(item.get("kwargs") or {})


# --- turning results into sentences --------------------------------------------------------

def _columns_of(kwargs: dict[str, Any]) -> list[str]:
    if "column" in kwargs:
        return [kwargs["column"]]
    if "column_A" in kwargs:
        return [kwargs["column_A"], kwargs["column_B"]]
    return list(kwargs.get("column_list", []))


def _describe(kind: str, kwargs: dict[str, Any], meta: dict[str, Any]) -> str:
    if meta.get("description"):
        return str(meta["description"])
    column = kwargs.get("column")
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if isinstance(low, dict) or isinstance(high, dict):
        low = None if isinstance(low, dict) else low
        high = "today" if isinstance(high, dict) else high
    texts = {
        "expect_column_values_to_not_be_null": f"{column} must not be empty or NaN",
        "expect_column_values_to_be_in_type_list":
            f"{column} must be of type {'/'.join(kwargs.get('type_list', []))}",
        "expect_column_values_to_be_in_set": f"{column} must be one of the allowed values",
        "expect_column_values_to_be_unique": f"{column} must be unique",
        "expect_compound_columns_to_be_unique":
            f"({', '.join(kwargs.get('column_list', []))}) must be unique",
        "expect_column_values_to_match_strftime_format":
            f"{column} must be a date written as {kwargs.get('strftime_format')}",
        "expect_column_values_to_match_regex":
            f"{column} must match {kwargs.get('regex')}",
        "expect_table_row_count_to_be_between": f"the table must have at least {low} rows",
    }
    if kind == "expect_column_values_to_be_between":
        bounds = " and ".join(
            b for b in (f">= {_bound(low)}" if low is not None else "",
                        f"<= {_bound(high)}" if high is not None else "") if b
        )
        return f"{column} must be {bounds}"
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        sign = ">=" if kwargs.get("or_equal") else ">"
        return f"{kwargs['column_A']} must be {sign} {kwargs['column_B']}"
    if kind == _COLUMN_SET:
        return "the columns must be exactly the suite's columns"
    return texts.get(kind, kind.removeprefix("expect_").replace("_", " "))


def _error_message(exception_info: dict[str, Any]) -> str | None:
    infos = [exception_info] if "raised_exception" in exception_info else exception_info.values()
    for info in infos:
        if info.get("raised_exception"):
            return str(info.get("exception_message")).removeprefix("Error: ")
    return None


def _column_set_failure(declared: list[str], frame: pd.DataFrame, description: str) -> Failure:
    missing = [c for c in declared if c not in frame.columns]
    unknown = [str(c) for c in frame.columns if c not in declared]
    detail = "; ".join(
        part for part in (
            "missing " + ", ".join(missing) if missing else "",
            "unknown " + ", ".join(unknown) if unknown else "",
        ) if part
    )
    return Failure(_COLUMN_SET, f"{description} ({detail})", missing + unknown)


def _failures(results: list[Any], frame: pd.DataFrame) -> list[Failure]:
    failures: list[Failure] = []
    for result in results:
        if result.success:
            continue
        config = result.expectation_config
        kwargs = dict(config.kwargs)
        description = _describe(config.type, kwargs, dict(config.meta or {}))
        if config.type == _COLUMN_SET:
            declared = list((config.meta or {}).get("declared_columns", kwargs["column_set"]))
            failures.append(_column_set_failure(declared, frame, description))
            continue
        details = result.result or {}
        failures.append(Failure(
            expectation=config.type,
            description=description,
            columns=_columns_of(kwargs),
            unexpected_count=details.get("unexpected_count"),
            examples=list(details.get("partial_unexpected_list") or [])[:EXAMPLES_SHOWN],
            observed=details.get("observed_value"),
            error=_error_message(result.exception_info or {}),
        ))
    return _fold_consequences(failures, frame)


def _fold_consequences(failures: list[Failure], frame: pd.DataFrame) -> list[Failure]:
    """Drop failures that only echo a column being absent or of the wrong type."""
    absent = {c for f in failures if f.expectation == _COLUMN_SET for c in f.columns
              if c not in frame.columns}
    mistyped = {f.columns[0] for f in failures
                if f.expectation == "expect_column_values_to_be_in_type_list"}
    kept = []
    for failure in failures:
        touches_absent = any(c in absent for c in failure.columns)
        if failure.expectation != _COLUMN_SET and touches_absent:
            continue
        if failure.error and any(c in mistyped for c in failure.columns):
            continue
        kept.append(failure)
    return kept

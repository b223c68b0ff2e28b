"""A use case definition: one YAML file under ``pipelines/usecases/``, checked strictly when read.

Data (dataset, suite, key, row order), modelling (task, target, features, split, metrics,
candidates), retraining (schedule, data-arrival policy, drift) and scoring (what `mlops predict`
writes) are one frozen object. Unknown keys are errors. Fields written once per task are resolved
for the chosen task, and defaults that depend on other fields are filled in, before any check runs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.config.errors import UseCaseError
from pipelines.config.project import Project
from pipelines.config.references import is_reference, resolve_reference

Task = Literal["classification", "regression"]
TASKS: tuple[str, ...] = ("classification", "regression")
WALK_FORWARD, STRATIFIED = "walk_forward", "stratified"
RANKED_LIST, LATEST_PER_GROUP = "ranked_list", "latest_per_group"

GENERIC_FEATURES = "features.tabular:tabular_features"
DEFAULT_METRICS = {"classification": ["roc_auc", "pr_auc", "log_loss", "brier"],
                   "regression": ["rmse", "mae", "directional_accuracy"]}
DEFAULT_PRIMARY = {"classification": "roc_auc", "regression": "rmse"}
DEFAULT_BASELINES = {WALK_FORWARD: ["always_up", "persistence"], STRATIFIED: ["base_rate"]}
AUTO_FOLDS = "auto"
DEFAULT_HOLDOUT = {WALK_FORWARD: 0.15, STRATIFIED: 0.2}
DEFAULT_SCHEDULE = "0 6 * * 1"  # weekly, Mondays 06:00 UTC
DEFAULT_SCORE_COLUMN = {"classification": "probability", "regression": "prediction"}
DEFAULT_HISTORY = 60
PER_TASK_FIELDS = ("target", "metrics", "primary_metric")
"""Fields that may be written once per task, so that switching ``task`` is a one-line edit."""
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"


class Definition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RowOrder(Definition):
    """Rows must be strictly increasing in ``column`` within each value of ``within``."""

    column: str = Field(description="The column that orders rows, e.g. a date.")
    within: str | None = Field(None, description="Order holds within each value of this column.")

    @property
    def previous_column(self) -> str:
        """Name of the derived column that holds each row's predecessor value."""
        scope = f" of the same {self.within}" if self.within else ""
        return f"previous {self.column}{scope}"


def parsed_date_column(column: str) -> str:
    """Name of the derived column that holds ``column`` parsed as a date."""
    return f"{column} (as date)"


class Split(Definition):
    strategy: Literal["walk_forward", "stratified"] = Field(
        description="walk_forward (time-ordered folds; needs `order`) or stratified.")
    folds: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        description="Cross-validation folds before the holdout; 1 is one validation split; auto (the "
                    "default): the strategy's usual folds (stratified 5, walk_forward 4) up to 50,000 "
                    "training rows, 3 up to 200,000, then one validation split.")
    holdout: float = Field(gt=0, lt=1, description="Share of rows (walk_forward: of dates) held out.")
    embargo: int = Field(ge=0, description="Dates left out between training and test (walk_forward).")
    min_train: float = Field(0.5, gt=0, lt=1, description="Share of dates the first fold trains on.")
    salt: str = Field("", description="stratified: mixed into the key hash; another salt draws another "
                                      "holdout (changing it on a registered model makes the champion's "
                                      "holdout rows training rows).")


class Candidate(Definition):
    model: str = Field(description="The model family (models/families.py); default: the candidate's name.")
    params: dict[str, Any] = Field(default_factory=dict, description="Overrides of the family's defaults.")
    features: dict[str, Any] = Field(default_factory=dict, description="Options of the feature builder.")
    tune: bool = Field(True, description="Search the family's hyperparameters when the use case has "
                                         "`tuning`; `params` given here stay fixed either way.")


class Tuning(Definition):
    """A hyperparameter search per candidate, on the cross-validation folds only."""

    budget_s: float = Field(gt=0, description="Wall-clock seconds each candidate may search for; the "
                                              "family's defaults are always tried first, in full.")
    trials: int = Field(50, ge=1, description="Most configurations tried per candidate, defaults included.")


class Retraining(Definition):
    schedule: str | None = Field(DEFAULT_SCHEDULE, description="Cron (UTC); null turns it off.")
    on_new_data: Literal["always", "drift", "never"] = Field(
        "always", description="What an accepted file in the landing zone starts.")
    drift_threshold: float = Field(0.25, gt=0, description="PSI above sampling noise that is drift.")
    drift_min_rows: int = Field(200, ge=1, description="Smaller files are versioned, not judged.")
    drift_view: str | None = Field(None, description="package.module:Transformer whose outputs are compared.")

    @field_validator("schedule")
    @classmethod
    def _is_cron(cls, value: str | None) -> str | None:
        if value is not None:
            from cronsim import CronSim, CronSimError

            try:
                CronSim(value, datetime.now(UTC))
            except CronSimError:
                raise ValueError(f"{value!r} is not a cron expression "
                                 "(minute hour day-of-month month day-of-week)") from None
        return value


class Scoring(Definition):
    output: Literal["ranked_list", "latest_per_group"] = Field(
        description="ranked_list: every row, best first; latest_per_group: each group's latest row.")
    score: str = Field(min_length=1, description="Name of the score column (or one per task).")
    group: str | None = Field(None, description="latest_per_group: the key column that groups rows.")
    history: int | None = Field(None, ge=0, description="latest_per_group: earlier rows per group from "
                                                        f"the dataset (default {DEFAULT_HISTORY}).")


class UseCase(Definition):
    name: str = Field(pattern=NAME_PATTERN, description="Defaults to the file name; must match it.")
    description: str = ""
    dataset: str = Field(description="CSV file under data/, versioned by DVC.")
    expectations: str = Field(description="Expectation suite under pipelines/expectations/.")
    key: tuple[str, ...] = Field(min_length=1, description="Columns that identify a row.")
    min_rows: int = Field(1, ge=1, description="Fewest rows the whole dataset may have.")
    order: RowOrder | None = None
    text_columns: tuple[str, ...] = Field((), description="Columns read as text.")
    date_columns: dict[str, str] = Field(default_factory=dict, description="Date columns and their format.")

    task: Task = "classification"
    target: str = Field(min_length=1, description="A 0/1 (or numeric) column, or package.module:function.")
    horizon: int = Field(1, ge=1, description="Rows (e.g. trading days) ahead that the target looks.")
    features: str = Field(GENERIC_FEATURES, description="package.module:builder of the feature step.")
    split: Split
    metrics: tuple[str, ...] = Field(min_length=1, description="Metrics of models/metrics.py for the task.")
    primary_metric: str = Field(description="The metric that chooses and promotes; one of `metrics`.")
    promotion_margin: float = Field(0.0, ge=0, description="How much a challenger must beat the champion by.")
    promotion_confidence: float = Field(
        0.95, gt=0.5, lt=1, description="Confidence of the intervals the promotion gate uses: the lower "
                                        "end must beat the best baseline by more than 0 and the "
                                        "champion by more than promotion_margin.")
    tuning: Tuning | None = Field(None, description="Hyperparameter search within a time budget; absent: "
                                                    "every candidate keeps its family's defaults.")
    baselines: tuple[str, ...] = Field(description="Naive baselines every candidate must beat.")
    candidates: dict[str, Candidate] = Field(min_length=1, description="Name: {model, params, features}.")
    non_inputs: tuple[str, ...] = Field(description="Columns never in a model's input: ids, the label.")
    registered_model: str = Field(description="Registered model name; default: the use case's name.")
    experiment: str = Field(description="MLflow experiment; default: the use case's name.")
    random_state: int = 0

    retraining: Retraining = Field(default_factory=Retraining)
    scoring: Scoring

    @model_validator(mode="before")
    @classmethod
    def _complete(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        raw = dict(raw)
        task = raw.get("task", "classification")
        if task not in TASKS:
            task = "classification"  # the field check reports the task; defaults still fill in
        for name in PER_TASK_FIELDS:
            if name in raw:
                raw[name] = _for_task(raw[name], task, name)
        if isinstance(raw.get("key"), str):
            raw["key"] = [raw["key"]]
        _complete_modelling(raw, task)
        _complete_sections(raw, task)
        return raw

    @model_validator(mode="after")
    def _consistent(self) -> UseCase:
        problems = [*_modelling_problems(self), *_split_problems(self), *_reference_problems(self),
                    *_scoring_problems(self)]
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # --- derived views ------------------------------------------------------------------

    @property
    def file_name(self) -> str:
        return f"{self.name}.yaml"

    def dataset_path(self, project: Project) -> Path:
        return project.data_dir / self.dataset

    def expectations_path(self, project: Project) -> Path:
        return project.expectations_dir / self.expectations

    @property
    def string_columns(self) -> tuple[str, ...]:
        """Columns read as text so that codes such as '007' or dates keep their spelling."""
        order = (self.order.column,) if self.order else ()
        return tuple(dict.fromkeys((*self.key, *order, *self.date_columns, *self.text_columns)))

    @property
    def target_is_column(self) -> bool:
        return not is_reference(self.target)

    @property
    def label_columns(self) -> tuple[str, ...]:
        """Columns a file to score need not have and that no model sees: the label."""
        return tuple(c for c in self.non_inputs if c not in self.key)

    @property
    def scoring_group(self) -> str | None:
        if self.scoring.output != LATEST_PER_GROUP:
            return None
        return self.scoring.group or (self.order.within if self.order else None)

    @property
    def scoring_history(self) -> int:
        if self.scoring.output != LATEST_PER_GROUP:
            return 0
        return DEFAULT_HISTORY if self.scoring.history is None else self.scoring.history

    def without_tuning(self) -> UseCase:
        """The same definition with every candidate at its declared hyperparameters (`--no-tune`)."""
        return self.model_copy(update={"tuning": None})

    def with_candidates(self, names: list[str]) -> UseCase:
        """The same definition restricted to ``names`` (``mlops run --candidates``), in that order."""
        unknown = [n for n in names if n not in self.candidates]
        if unknown:
            raise UseCaseError(f"{self.name} has no candidate {', '.join(unknown)} "
                               f"(defined: {', '.join(self.candidates)})")
        return self.model_copy(update={"candidates": {n: self.candidates[n] for n in names}})


# --- filling in defaults ----------------------------------------------------------------------

def _for_task(value: Any, task: str, field: str) -> Any:
    """A value written once, or once per task (``{classification: ..., regression: ...}``)."""
    if not isinstance(value, dict):
        return value
    from difflib import get_close_matches

    for key in value:
        if key not in TASKS:
            near = get_close_matches(str(key), TASKS, n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else f" (tasks: {', '.join(TASKS)})"
            raise ValueError(f"{field}: unknown task '{key}'{hint}")
    if value.get(task) is None:
        raise ValueError(f"{field}: no value for task '{task}'")
    return value[task]


def _complete_modelling(raw: dict[str, Any], task: str) -> None:
    split = raw.get("split") or {}
    if isinstance(split, dict):
        strategy = split.get("strategy", WALK_FORWARD if raw.get("order") else STRATIFIED)
        split = {"strategy": strategy, **split}
        if strategy in DEFAULT_HOLDOUT:
            split.setdefault("folds", AUTO_FOLDS)
            split.setdefault("holdout", DEFAULT_HOLDOUT[strategy])
            raw.setdefault("baselines", DEFAULT_BASELINES[strategy])
        split.setdefault("embargo", raw.get("horizon", 1))
        raw["split"] = split
    primary = raw.setdefault("primary_metric", DEFAULT_PRIMARY[task])
    if "metrics" not in raw:
        defaults = DEFAULT_METRICS[task]
        raw["metrics"] = defaults if primary in defaults else [primary, *defaults]
    candidates = raw.get("candidates")
    if isinstance(candidates, list):
        candidates = {name: {} for name in candidates}
    if isinstance(candidates, dict):
        raw["candidates"] = {name: _with_model(name, options) for name, options in candidates.items()}
    target = raw.get("target")
    if "non_inputs" not in raw:
        raw["non_inputs"] = [target] if isinstance(target, str) and not is_reference(target) else []
    if isinstance(raw.get("name"), str):
        raw.setdefault("registered_model", raw["name"])
        raw.setdefault("experiment", raw["name"])


def _with_model(name: str, options: Any) -> Any:
    options = {} if options is None else options
    return {"model": name, **options} if isinstance(options, dict) else options


def _complete_sections(raw: dict[str, Any], task: str) -> None:
    if raw.get("retraining") is None:
        raw["retraining"] = {}
    scoring = raw.get("scoring") or {}
    if isinstance(scoring, dict):
        scoring = dict(scoring)
        scoring.setdefault("output", LATEST_PER_GROUP if raw.get("order") else RANKED_LIST)
        score = scoring.get("score", DEFAULT_SCORE_COLUMN[task])
        scoring["score"] = _for_task(score, task, "scoring.score")
    raw["scoring"] = scoring


# --- checks across fields -------------------------------------------------------------------

def _modelling_problems(use_case: UseCase) -> list[str]:
    from models.baselines import BASELINES
    from models.families import FAMILIES, unknown_family_message
    from models.metrics import METRICS

    known = sorted(name for task, name in METRICS if task == use_case.task)
    problems = [f"metrics: unknown {use_case.task} metric '{m}' (available: {', '.join(known)})"
                for m in use_case.metrics if (use_case.task, m) not in METRICS]
    if (use_case.task, use_case.primary_metric) not in METRICS:
        problems.append(f"primary_metric: unknown {use_case.task} metric '{use_case.primary_metric}' "
                        f"(available: {', '.join(known)})")
    elif use_case.primary_metric not in use_case.metrics:
        problems.append(f"primary_metric: '{use_case.primary_metric}' is not among metrics "
                        f"({', '.join(use_case.metrics)})")
    problems += [f"baselines: unknown baseline '{b}' (available: {', '.join(BASELINES)})"
                 for b in use_case.baselines if b not in BASELINES]
    problems += [f"candidates.{name}.model: {unknown_family_message(c.model)}"
                 for name, c in use_case.candidates.items() if c.model not in FAMILIES]
    return problems


def _split_problems(use_case: UseCase) -> list[str]:
    split = use_case.split
    if split.strategy != WALK_FORWARD:
        return []
    if use_case.order is None:
        return ["split.strategy: walk_forward needs an 'order' (the date column) in the definition"]
    if split.embargo < use_case.horizon:
        return [f"split.embargo: {split.embargo} is shorter than the prediction horizon "
                f"({use_case.horizon}); training labels would overlap the test rows"]
    return []


def _reference_problems(use_case: UseCase) -> list[str]:
    references = {"features": use_case.features, "retraining.drift_view": use_case.retraining.drift_view}
    if not use_case.target_is_column:
        references["target"] = use_case.target
    problems = []
    for field, reference in references.items():
        if reference is None:
            continue
        try:
            resolve_reference(reference)
        except ValueError as exc:
            problems.append(f"{field}: {exc}")
    return problems


def _scoring_problems(use_case: UseCase) -> list[str]:
    scoring = use_case.scoring
    problems = []
    if scoring.score in use_case.key:
        problems.append(f"scoring.score: '{scoring.score}' is also a key column")
    if scoring.output == RANKED_LIST:
        extra = [name for name in ("group", "history") if getattr(scoring, name) is not None]
        if extra:
            verb = "applies" if len(extra) == 1 else "apply"
            problems.append(f"scoring: {' and '.join(extra)} only {verb} to output {LATEST_PER_GROUP}")
        return problems
    if use_case.order is None:
        return [*problems, f"scoring.output: {LATEST_PER_GROUP} needs the use case's 'order' "
                           "(the column that says which row is the latest)"]
    group = use_case.scoring_group
    if group is not None and group not in use_case.key:
        problems.append(f"scoring.group: '{group}' must be one of the key columns "
                        f"({', '.join(use_case.key)})")
    return problems

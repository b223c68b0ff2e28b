"""What a cycle records: each candidate's run, the registered version's tags, the leaderboard report.

Pure: the contents are built here and written by the MLflow adapter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models import leaderboard
from models.families import BASE_REQUIREMENTS, FAMILIES
from models.promotion import Decision
from pipelines.config.usecase import STRATIFIED, UseCase
from pipelines.nodes.training import CandidateOutcome, ChampionScore, Prepared, primary_metric


@dataclass
class CandidateRecord:
    """Everything one candidate's run holds."""

    name: str
    family: str
    started: float
    params: dict[str, str]
    error: str | None = None
    fold_metrics: list[dict[str, float]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    model: Any = None
    input_example: Any = None
    example_output: Any = None
    requirements: tuple[str, ...] = ()
    """Distributions the logged model needs, unpinned; the adapter pins the installed versions."""
    predict_method: str = "predict"


@dataclass(frozen=True)
class CycleReport:
    text: str
    params: dict[str, str]
    metrics: dict[str, float]
    texts: dict[str, str]
    figures: dict[str, Any]
    documents: dict[str, Any]
    markdown: str


def _params(values: dict[str, Any], prefix: str) -> dict[str, str]:
    """Parameters as MLflow takes them: flat, stringified, within its length limit."""
    params = {}
    for key, value in values.items():
        if hasattr(value, "get_params") or callable(value):
            continue
        text = str(value)
        params[f"{prefix}{key}"] = text if len(text) <= 500 else text[:497] + "..."
    return params


def _present(columns: tuple[str, ...], frame: pd.DataFrame) -> list[str]:
    return [c for c in columns if c in frame.columns]


def model_inputs(use_case: UseCase, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without identifiers and the label: what a model, its example and signature see."""
    return frame.drop(columns=_present(use_case.non_inputs, frame))


def holdout_figures(use_case: UseCase, y_true: np.ndarray, scores: dict[str, np.ndarray]) -> dict[str, Any]:
    # Imported where figures are drawn: matplotlib then loads while a command's Prefect server boots.
    from models import plots

    figures: dict[str, Any] = {}
    if use_case.task == "classification":
        figures["plots/roc.png"] = plots.roc_figure(y_true, scores, f"{use_case.name}: holdout ROC")
        if use_case.split.strategy == STRATIFIED:
            figures["plots/gains.png"] = plots.gains_figure(
                y_true, scores, f"{use_case.name}: holdout gains and lift")
    return figures


def candidate_record(use_case: UseCase, outcome: CandidateOutcome, data: Prepared) -> CandidateRecord:
    candidate = outcome.candidate
    family = FAMILIES[candidate.model]
    params = {"candidate": outcome.name, "model": candidate.model, "features": use_case.features,
              **_params(candidate.features, "features."), **_params(candidate.params, "params.")}
    record = CandidateRecord(outcome.name, family.name, outcome.started, params, error=outcome.error,
                             requirements=(*BASE_REQUIREMENTS, *family.requirements))
    if outcome.evaluation is not None:
        _add_results(use_case, record, outcome.evaluation, data)
    if outcome.tuning is not None:
        _add_tuning(record, outcome.tuning)
    return record


def _add_tuning(record: CandidateRecord, result: Any) -> None:
    """The search: its best hyperparameters as parameters, every trial as a table."""
    record.params.update(_params(result.best_params, "tuned."))
    record.params["tuning"] = result.summary()[:500]
    record.metrics.update({"tuning_trials": float(len(result.trials)),
                           "tuning_pruned": float(sum(t.state == "pruned" for t in result.trials)),
                           "tuning_seconds": float(result.seconds)})
    record.texts["tuning/trials.csv"] = result.table().to_csv(index=False)


def _add_results(use_case: UseCase, record: CandidateRecord, evaluation: Any, data: Prepared) -> None:
    from models.evaluation import positive_scores

    record.params.update(_params(evaluation.model.steps[-1][1].get_params(deep=False), "model."))
    record.fold_metrics = [{f"fold_{k}": v for k, v in fold.metrics.items()} for fold in evaluation.folds]
    record.metrics = {**{f"cv_{k}": v for k, v in evaluation.cv_metrics.items()},
                      **{f"cv_{k}_std": v for k, v in evaluation.cv_std.items()},
                      **{f"holdout_{k}": v for k, v in evaluation.holdout_metrics.items()},
                      "train_seconds": evaluation.fit_seconds,
                      "final_fit_seconds": evaluation.holdout.fit_seconds}
    scores = evaluation.holdout.scores
    record.figures = _candidate_figures(use_case, record.name, data.holdout_y, scores, evaluation.model)
    shown = model_inputs(use_case, data.frame.iloc[data.plan.final.test])
    keys = [c for c in use_case.key if c in shown.columns]
    record.texts = {"holdout_predictions.csv": shown[keys].assign(actual=data.holdout_y, predicted=scores)
                    .to_csv(index=False)}
    record.model = evaluation.model
    # In the types rows are read with, so that the signature accepts what `mlops predict` reads.
    record.input_example = model_inputs(use_case, data.as_read(data.frame.iloc[data.plan.final.train[:5]]))
    record.example_output = positive_scores(evaluation.model, record.input_example, use_case.task)
    record.predict_method = "predict_proba" if use_case.task == "classification" else "predict"


def _candidate_figures(use_case: UseCase, name: str, y_true: np.ndarray, scores: np.ndarray,
                       model: Any) -> dict[str, Any]:
    from models import plots

    figures = holdout_figures(use_case, y_true, {name: scores})
    figures["plots/predicted_vs_actual.png"] = plots.predicted_vs_actual_figure(
        y_true, scores, use_case.task, f"{name}: holdout predicted vs actual")
    importances = plots.feature_importances(model)
    if importances is not None:
        figures["plots/feature_importance.png"] = plots.feature_importance_figure(
            *importances, f"{name}: feature importance")
    return figures


def version_tags(use_case: UseCase, best: CandidateOutcome, tags: dict[str, str], parent_id: str,
                 family_tag: str, candidate_tag: str, data: Prepared) -> dict[str, str]:
    """Lineage and scores of the registered version (the holdout score with its interval), as tags."""
    primary = use_case.primary_metric
    evaluation = best.evaluation
    low, high = _ranges(use_case, data, {best.name: evaluation.holdout.scores})[best.name]
    return {**tags, candidate_tag: best.name, family_tag: best.candidate.model,
            "run_id": best.run_id or "", "parent_run_id": parent_id, "primary_metric": primary,
            f"cv_{primary}": f"{evaluation.cv_metrics.get(primary, math.nan):.6g}",
            f"holdout_{primary}": f"{evaluation.holdout_metrics.get(primary, math.nan):.6g}",
            f"holdout_{primary}_low": f"{low:.6g}", f"holdout_{primary}_high": f"{high:.6g}",
            "holdout_confidence": f"{use_case.promotion_confidence:.6g}"}


def _ranges(use_case: UseCase, data: Prepared,
            scores: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    from pipelines.nodes.uncertainty import holdout_dates, holdout_ranges

    dates = holdout_dates(use_case, data.frame, data.plan.final.test)
    return holdout_ranges(use_case, primary_metric(use_case), data.holdout_y, dates, scores)


# --- the leaderboard ------------------------------------------------------------------------

def _entry(name: str, kind: str, evaluation: Any, primary: str, note: str = "") -> leaderboard.Entry:
    return leaderboard.Entry(name, kind, evaluation.holdout_metrics,
                             evaluation.cv_metrics.get(primary, math.nan),
                             evaluation.cv_std.get(primary, math.nan), evaluation.fit_seconds, note)


def entries(use_case: UseCase, outcomes: list[CandidateOutcome], chosen: str, registered: str,
            decision: Decision, baselines: dict[str, Any], champion: ChampionScore,
            data: Prepared) -> list[leaderboard.Entry]:
    """One row per candidate, baseline and champion, each with its holdout interval."""
    rows = _rows(use_case, outcomes, chosen, registered, decision, baselines, champion)
    scores = {o.name: o.evaluation.holdout.scores for o in outcomes if o.evaluation is not None}
    scores.update({n: e.holdout.scores for n, e in baselines.items()})
    if champion.evaluation is not None:
        scores[f"champion v{champion.version}"] = champion.evaluation.holdout.scores
    ranges = _ranges(use_case, data, scores)
    for row in rows:
        row.interval = ranges.get(row.name)
    return rows


def _rows(use_case: UseCase, outcomes: list[CandidateOutcome], chosen: str, registered: str,
          decision: Decision, baselines: dict[str, Any],
          champion: ChampionScore) -> list[leaderboard.Entry]:
    primary = use_case.primary_metric
    rows = []
    for outcome in outcomes:
        if outcome.evaluation is None:
            rows.append(leaderboard.Entry(outcome.name, "candidate", note=f"failed: {outcome.error}"[:80]))
            continue
        note = (f"registered v{registered}, " + ("champion" if decision.promote else "challenger")
                if outcome.name == chosen else "")
        rows.append(_entry(outcome.name, "candidate", outcome.evaluation, primary, note))
    rows += [_entry(name, "baseline", evaluation, primary) for name, evaluation in baselines.items()]
    if champion.version is not None:
        note = (("replaced" if decision.promote else "kept") if champion.evaluation
                else f"not scored: {champion.error}"[:80])
        holdout = champion.evaluation.holdout_metrics if champion.evaluation else {}
        rows.append(leaderboard.Entry(f"champion v{champion.version}", "champion", holdout, note=note))
    return rows


def cycle_report(use_case: UseCase, rows: list[leaderboard.Entry], outcomes: list[CandidateOutcome],
                 baselines: dict[str, Any], champion: ChampionScore, data: Prepared,
                 decision: Decision) -> CycleReport:
    """The leaderboard as text, Markdown, CSV and plots, with the cycle's parameters and decision."""
    primary = use_case.primary_metric
    better_high = primary_metric(use_case).greater_is_better
    header, table = leaderboard.table(rows, list(use_case.metrics), primary, better_high,
                                      use_case.promotion_confidence)
    markdown = leaderboard.render_markdown(header, table)
    metrics = {f"holdout_{primary}.{row.name.replace(' ', '_')}": row.holdout.get(primary, math.nan)
               for row in rows}
    metrics.update({f"holdout_{primary}_{end}.{row.name.replace(' ', '_')}": value for row in rows
                    if row.interval for end, value in zip(("low", "high"), row.interval, strict=True)
                    if not math.isnan(value)})
    return CycleReport(
        text=leaderboard.render_text(header, table),
        params=_cycle_params(use_case, data),
        metrics=metrics,
        texts={"leaderboard.md": markdown, "leaderboard.csv": leaderboard.render_csv(header, table)},
        figures=_cycle_figures(use_case, rows, outcomes, baselines, champion, data),
        documents={"cycle.json": {"split": data.plan.description, "decision": decision.tags()}},
        markdown=markdown,
    )


def _cycle_params(use_case: UseCase, data: Prepared) -> dict[str, str]:
    return {"task": use_case.task, "target": use_case.target, "split": data.plan.description[:500],
            "primary_metric": use_case.primary_metric, "promotion_margin": str(use_case.promotion_margin),
            "promotion_confidence": str(use_case.promotion_confidence),
            "candidates": ",".join(use_case.candidates), "baselines": ",".join(use_case.baselines),
            "rows_train": str(len(data.plan.final.train)), "rows_holdout": str(len(data.plan.final.test))}


def _cycle_figures(use_case: UseCase, rows: list[leaderboard.Entry], outcomes: list[CandidateOutcome],
                   baselines: dict[str, Any], champion: ChampionScore, data: Prepared) -> dict[str, Any]:
    from models import plots

    primary = use_case.primary_metric
    chosen = next((row.name for row in rows if row.note.startswith("registered")), None)
    references = {f"baseline {n}": e.holdout_metrics.get(primary, math.nan) for n, e in baselines.items()}
    figures = {"plots/leaderboard.png": plots.leaderboard_figure(
        [row.name for row in rows], [row.holdout.get(primary, math.nan) for row in rows], primary,
        primary_metric(use_case).greater_is_better, chosen, references)}
    scores = {o.name: o.evaluation.holdout.scores for o in outcomes if o.evaluation is not None}
    scores.update({n: e.holdout.scores for n, e in baselines.items()})
    if champion.evaluation is not None:
        scores[champion.evaluation.name] = champion.evaluation.holdout.scores
    return {**figures, **holdout_figures(use_case, data.holdout_y, scores)}

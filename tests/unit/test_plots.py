import ast
import math
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from models import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_saves(figure, tmp_path, name="figure.png"):
    assert isinstance(figure, Figure)
    path = plots.save(figure, tmp_path / "plots" / name)
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > 1000


@pytest.fixture(scope="module")
def scored():
    rng = np.random.default_rng(0)
    y = (rng.random(600) < 0.2).astype(float)
    good = np.clip(0.2 + 0.4 * (y - 0.2) + rng.normal(0, 0.15, y.size), 0, 1)
    weak = np.clip(0.2 + 0.1 * (y - 0.2) + rng.normal(0, 0.2, y.size), 0, 1)
    return y, {"xgboost": good, "linear": weak, "always_up": np.full(y.size, 0.2)}


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4))
    y = (x[:, 0] - 0.5 * x[:, 2] + rng.normal(0, 0.5, 300) > 0).astype(int)
    return x, y


def test_roc_of_several_models(scored, tmp_path):
    y, scores = scored
    figure = plots.roc_figure(y, scores, "holdout ROC")
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert any(label.startswith("xgboost (AUC ") for label in labels)
    assert_saves(figure, tmp_path)


def test_roc_with_a_single_class_is_a_note_not_an_error(tmp_path):
    figure = plots.roc_figure(np.zeros(50), {"model": np.linspace(0, 1, 50)}, "one class")
    assert any("undefined" in text.get_text() for text in figure.axes[0].texts)
    assert_saves(figure, tmp_path)


def test_roc_ignores_unlabelled_rows(scored, tmp_path):
    y, scores = scored
    y = y.copy()
    y[:10] = np.nan
    assert_saves(plots.roc_figure(y, {"xgboost": scores["xgboost"]}, "with gaps"), tmp_path)


def test_gains_and_lift(scored, tmp_path):
    y, scores = scored
    figure = plots.gains_figure(y, scores, "gains")
    assert len(figure.axes) == 2
    assert_saves(figure, tmp_path)


def test_gains_reach_all_positives_and_lift_averages_to_one(scored):
    y, scores = scored
    contacted, captured = plots._gains(y.astype(int), scores["xgboost"])
    assert contacted[-1] == captured[-1] == 1.0
    assert np.all(np.diff(captured) >= 0)
    lift = plots._decile_lift(y.astype(int), scores["xgboost"])
    assert lift.size == 10 and lift[0] > 1 > lift[-1]
    assert lift.mean() == pytest.approx(1.0)


def test_tied_scores_gain_like_random():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0] * 10)
    flat = np.full(y.size, 0.3)
    contacted, captured = plots._gains(y, flat)
    np.testing.assert_allclose(captured, contacted)
    np.testing.assert_allclose(plots._decile_lift(y, flat), 1.0)


def test_gains_with_a_single_class_and_few_rows(tmp_path):
    assert_saves(plots.gains_figure(np.ones(30), {"m": np.linspace(0, 1, 30)}, "one class"), tmp_path)
    assert_saves(plots.gains_figure([0, 1, 0, 1, 1], {"m": [0.1, 0.9, 0.2, 0.8, 0.3]}, "tiny"), tmp_path)


def test_reliability_plot(scored, tmp_path):
    y, scores = scored
    figure = plots.predicted_vs_actual_figure(y, scores["xgboost"], "classification", "calibration")
    assert len(figure.axes) == 2
    assert_saves(figure, tmp_path)
    # Constant predictions collapse to one bin instead of failing.
    assert_saves(plots.predicted_vs_actual_figure(y, scores["always_up"], "classification", "flat"),
                 tmp_path)


def test_calibration_bins_cover_every_row():
    s = np.linspace(0, 1, 101)
    y = (s > 0.5).astype(float)
    predicted, observed, counts = plots._calibration_bins(y, s)
    assert counts.sum() == 101 and len(counts) == plots.CALIBRATION_BINS
    assert np.all(np.diff(predicted) > 0) and observed[0] == 0 and observed[-1] == 1


def test_regression_scatter_is_subsampled_deterministically(tmp_path):
    rng = np.random.default_rng(2)
    actual = rng.normal(size=12_000)
    predicted = actual + rng.normal(0, 0.3, actual.size)
    first = plots.predicted_vs_actual_figure(actual, predicted, "regression", "returns")
    second = plots.predicted_vs_actual_figure(actual, predicted, "regression", "returns")
    points = [figure.axes[0].collections[0].get_offsets() for figure in (first, second)]
    assert len(points[0]) == plots.MAX_SCATTER_POINTS
    np.testing.assert_array_equal(points[0], points[1])
    assert_saves(first, tmp_path)


def test_unknown_task_is_rejected():
    with pytest.raises(ValueError, match="unknown task"):
        plots.predicted_vs_actual_figure([1.0], [1.0], "ranking", "x")


def test_feature_importance_shows_the_top_ones(tmp_path):
    names = [f"feature_{i}" for i in range(30)]
    importances = np.linspace(-1, 2, 30)
    figure = plots.feature_importance_figure(names, importances, "importance", top=5)
    shown = [label.get_text() for label in figure.axes[0].get_yticklabels()]
    assert shown == ["feature_29", "feature_28", "feature_27", "feature_26", "feature_25"]
    assert_saves(figure, tmp_path)


def test_leaderboard_with_missing_values_and_references(tmp_path):
    figure = plots.leaderboard_figure(
        ["linear", "xgboost", "gru", "mlp"], [0.52, 0.55, math.nan, 0.51], "auc", True, "xgboost",
        {"baseline always_up": 0.5, "champion v3": 0.53, "baseline broken": math.nan})
    ax = figure.axes[0]
    assert [label.get_text() for label in ax.get_yticklabels()] == [
        "xgboost (chosen)", "linear", "mlp", "gru"]
    assert len(ax.get_legend_handles_labels()[1]) == 2
    assert_saves(figure, tmp_path)


def test_leaderboard_where_lower_is_better_and_nothing_is_chosen(tmp_path):
    figure = plots.leaderboard_figure(["a", "b"], [3.0, 2.0], "rmse", False, None)
    assert [label.get_text() for label in figure.axes[0].get_yticklabels()] == ["b", "a"]
    assert_saves(figure, tmp_path)
    assert_saves(plots.leaderboard_figure(["a"], [math.nan], "auc", True, "a"), tmp_path)


def test_importances_of_a_linear_pipeline(table, tmp_path):
    x, y = table
    pipeline = Pipeline([("features", StandardScaler()), ("model", LogisticRegression())]).fit(x, y)
    names, importances = plots.feature_importances(pipeline)
    assert len(names) == importances.size == 4
    assert np.all(importances >= 0) and np.argmax(importances) == 0
    assert_saves(plots.feature_importance_figure(names, importances, "linear"), tmp_path)


def test_importances_of_a_nested_linear_model(table):
    x, y = table
    model = make_pipeline(StandardScaler(), LogisticRegression())
    names, importances = plots.feature_importances(
        Pipeline([("features", StandardScaler()), ("model", model)]).fit(x, y))
    assert names == ["x0", "x1", "x2", "x3"] and importances.size == 4


def test_importances_of_xgboost(table, tmp_path):
    from xgboost import XGBClassifier

    x, y = table
    model = XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1, random_state=0)
    names, importances = plots.feature_importances(
        Pipeline([("features", StandardScaler()), ("model", model)]).fit(x, y))
    assert len(names) == importances.size == 4
    assert_saves(plots.feature_importance_figure(names, importances, "xgboost"), tmp_path)


def test_no_importances_is_none(table):
    x, y = table
    fitted = Pipeline([("features", StandardScaler()), ("model", DummyClassifier())]).fit(x, y)
    assert plots.feature_importances(fitted) is None
    assert plots.feature_importances(Pipeline([("model", LogisticRegression())])) is None
    assert plots.feature_importances(object()) is None


def test_plots_never_import_pyplot():
    # pyplot holds global figure state and picks a GUI backend; the training workers must not touch it.
    tree = ast.parse(Path(plots.__file__).read_text())
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [f"{node.module}.{alias.name}" for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) for alias in node.names]
    assert not [name for name in imported if "pyplot" in name]

import time

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification
from sklearn.pipeline import Pipeline

from models import interrupt
from models.evaluation import evaluate
from models.families import FAMILIES, TASKS, build_candidate
from models.search_space import Choice, FloatRange, IntRange
from models.splits import Fold, SplitPlan, stratified
from models.tuning import suggest, tune

METRICS = ["roc_auc", "log_loss"]
GOOD_LAYERS = (64, 32)
# scikit-learn's default of no L2 penalty cannot sit inside a log range; trial 0 still tries it.
DEFAULTS_OUTSIDE_THEIR_SPACE = {("hist_boosting", "l2_regularization")}


class Toy(ClassifierMixin, BaseEstimator):
    """Scores rows by their first column plus ``noise``: the more noise, the worse the model."""

    def __init__(self, noise=0.0, layers=(32,), delay=0.0, fail_above=np.inf, stop_above=np.inf):
        self.noise = noise
        self.layers = layers
        self.delay = delay
        self.fail_above = fail_above
        self.stop_above = stop_above

    def fit(self, X, y):
        if self.noise > self.fail_above:
            raise ValueError("too noisy to fit")
        if self.noise > self.stop_above:
            interrupt.request()
        time.sleep(self.delay)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        noise = self.noise + (0.0 if tuple(self.layers) == GOOD_LAYERS else 1.0)
        signal = np.asarray(X)[:, 0] + noise * np.random.default_rng(0).normal(size=len(X))
        positive = 1 / (1 + np.exp(-signal))
        return np.column_stack([1 - positive, positive])


def toy_data(n=600):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=n), "other": rng.normal(size=n)})
    y = (frame["x"] + 0.7 * rng.normal(size=n) > 0).astype(int).to_numpy()
    return frame, y


def plan_for(y, folds=3):
    return stratified(y, pd.DataFrame({"key": np.arange(len(y))}), n_splits=folds)


def toy_factory(**fixed):
    return lambda overrides: Toy(**{**fixed, **overrides})


def tune_toy(space, budget_s=30.0, max_trials=12, **fixed):
    frame, y = toy_data()
    return tune("toy", toy_factory(**fixed), space, frame, y, plan_for(y).folds, "classification", METRICS,
                "roc_auc", budget_s=budget_s, max_trials=max_trials)


def test_the_defaults_are_trial_zero_and_never_beaten_by_a_worse_trial():
    result = tune_toy({"noise": FloatRange(0.0, 5.0)}, max_trials=8)
    first = result.trials[0]
    assert (first.number, first.state, first.params) == (0, "defaults", {})
    assert len(first.fold_values) == 3
    # Every trial adds noise to the defaults' scores, so none may win.
    assert result.best_params == {} and result.best_number == 0
    assert result.best_value == first.value
    assert all(not t.value > first.value for t in result.trials if t.state == "complete")


def test_a_better_setting_wins_and_a_choice_of_tuples_comes_back_as_a_tuple():
    result = tune_toy({"layers": Choice(((32,), GOOD_LAYERS, (128, 64)))}, max_trials=6)
    assert result.best_params == {"layers": GOOD_LAYERS}
    assert isinstance(result.best_params["layers"], tuple)
    assert result.best_value > result.defaults_value


def test_max_trials_counts_the_defaults():
    result = tune_toy({"noise": FloatRange(0.0, 1.0)}, max_trials=4)
    assert len(result.trials) == 4 and result.stopped_by == "trials"
    assert [t.number for t in result.trials] == [0, 1, 2, 3]


def test_the_budget_ends_the_search_close_to_its_limit():
    result = tune_toy({"noise": FloatRange(0.0, 1.0)}, budget_s=2.0, max_trials=1000, delay=0.1)
    assert result.stopped_by == "budget"
    assert 2 < len(result.trials) < 1000
    # A trial starts only if an average one fits in the time left; a late one stops after a fold.
    assert result.seconds < 2.0 + 0.5


def test_the_defaults_run_on_every_fold_even_past_the_budget():
    result = tune_toy({"noise": FloatRange(0.0, 1.0)}, budget_s=0.0)
    assert [t.state for t in result.trials] == ["defaults"]
    assert len(result.best_folds) == 3 and result.stopped_by == "budget"


def test_a_trial_the_budget_runs_out_in_stops_after_its_current_fold():
    frame, y = toy_data()

    def make(overrides):
        # The defaults are quick, so a tuned trial starts; it is slow enough to outlast the budget.
        return Toy(delay=0.8 if overrides else 0.0, **overrides)

    result = tune("toy", make, {"noise": FloatRange(0.0, 0.1)}, frame, y, plan_for(y).folds,
                  "classification", METRICS, "roc_auc", budget_s=0.6, max_trials=10)
    assert [t.state for t in result.trials] == ["defaults", "stopped"]
    assert len(result.trials[1].fold_values) == 1
    assert result.stopped_by == "budget" and result.best_number == 0


def test_bad_settings_get_pruned():
    result = tune_toy({"noise": FloatRange(0.0, 20.0)}, max_trials=20)
    states = [t.state for t in result.trials]
    assert "pruned" in states
    pruned = [t for t in result.trials if t.state == "pruned"]
    assert all(len(t.fold_values) < 3 for t in pruned)


def test_a_failing_setting_is_recorded_and_the_search_goes_on():
    result = tune_toy({"noise": FloatRange(0.0, 4.0)}, max_trials=12, fail_above=1.0)
    failed = [t for t in result.trials if t.state == "failed"]
    assert failed and all("too noisy to fit" in t.error for t in failed)
    assert result.trials[-1].number == 11
    assert result.best_number not in {t.number for t in failed}


def test_a_stop_request_is_not_mistaken_for_a_failed_setting():
    try:
        with pytest.raises(interrupt.Stopped):
            tune_toy({"noise": FloatRange(0.0, 4.0)}, max_trials=12, stop_above=0.5)
    finally:
        interrupt.reset()


def test_progress_says_at_most_one_line_per_trial():
    frame, y = toy_data()
    lines = []
    result = tune("toy", toy_factory(), {"noise": FloatRange(0.0, 2.0)}, frame, y, plan_for(y).folds,
                  "classification", METRICS, "roc_auc", budget_s=30, max_trials=5, progress=lines.append)
    assert len(lines) == len(result.trials) == 5
    assert lines[0].startswith("toy: trial 0 (defaults) cv roc_auc ")


def test_a_metric_where_lower_is_better_is_minimised():
    frame, y = toy_data()
    result = tune("toy", toy_factory(), {"layers": Choice(((32,), GOOD_LAYERS))}, frame, y,
                  plan_for(y).folds, "classification", METRICS, "log_loss", budget_s=30, max_trials=5)
    assert result.best_params == {"layers": GOOD_LAYERS}
    assert result.best_value < result.defaults_value


def test_the_table_has_a_row_per_trial_and_the_summary_names_the_metric():
    result = tune_toy({"noise": FloatRange(0.0, 20.0), "layers": Choice(((32,), GOOD_LAYERS))}, max_trials=8)
    table = result.table()
    assert len(table) == len(result.trials) == 8
    assert {"number", "state", "value", "seconds", "fold_1", "fold_3", "param.noise",
            "param.layers"} <= set(table.columns)
    assert table["number"].tolist() == list(range(8))
    assert result.summary().startswith("8 trials")
    assert "best cv roc_auc" in result.summary() and "defaults" in result.summary()


def test_evaluate_reuses_the_winning_folds_instead_of_fitting_them_again():
    frame, y = toy_data()
    plan = plan_for(y)
    result = tune("toy", toy_factory(), {"layers": Choice(((32,), GOOD_LAYERS))}, frame, y, plan.folds,
                  "classification", METRICS, "roc_auc", budget_s=30, max_trials=4)
    builds = []

    def make():
        builds.append(1)
        return Toy(**result.best_params)

    evaluation = evaluate("toy", make, frame, y, plan, "classification", METRICS, cv=result.best_folds)
    assert len(builds) == 1  # the final fit only
    assert evaluation.cv_metrics["roc_auc"] == pytest.approx(result.best_value)
    assert evaluation.folds == result.best_folds and evaluation.holdout is not None
    assert len(evaluation.pooled_positions) == len(evaluation.pooled_scores)


def test_evaluate_refuses_fold_results_that_do_not_match_the_plan():
    frame, y = toy_data()
    plan = plan_for(y)
    folds_only = SplitPlan(plan.folds[:2], plan.final, "two folds")
    result = tune("toy", toy_factory(), {}, frame, y, plan.folds, "classification", METRICS, "roc_auc",
                  budget_s=30, max_trials=3)
    with pytest.raises(ValueError, match="3 fold results"):
        evaluate("toy", Toy, frame, y, folds_only, "classification", METRICS, cv=result.best_folds)


def test_tuning_a_real_family_on_hand_made_folds():
    X, y = make_classification(400, 8, n_informative=4, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)])
    rows = np.arange(400)
    folds = [Fold(rows[rows % 2 != k], rows[rows % 2 == k], rows[rows % 2 == k]) for k in (0, 1)]
    space = FAMILIES["linear"].search_space("classification")
    result = tune("linear", lambda o: build_candidate("linear", "classification", o), space, frame, y,
                  folds, "classification", METRICS, "roc_auc", budget_s=30, max_trials=6)
    assert len(result.trials) == 6
    assert not result.defaults_value > result.best_value
    assert set(result.best_params) <= {"C"}


TUNED = sorted(name for name, family in FAMILIES.items() if family.search_space)
CHEAP = {"linear": {}, "hist_boosting": {"max_iter": 20}, "xgboost": {"n_estimators": 20}}


def final_step(estimator):
    return estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator


def sampled_params(space, count=3):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    return [suggest(space, study.ask()) for _ in range(count)]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", TUNED)
def test_every_declared_space_contains_the_family_defaults(name, task):
    space = FAMILIES[name].search_space(task)
    defaults = final_step(build_candidate(name, task)).get_params()
    outside = {param for param, dimension in space.items() if defaults[param] not in dimension}
    assert outside <= {param for family, param in DEFAULTS_OUTSIDE_THEIR_SPACE if family == name}


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", TUNED)
def test_sampled_params_build_the_family_as_asked(name, task):
    space = FAMILIES[name].search_space(task)
    X, y = make_classification(200, 6, random_state=0)
    target = y if task == "classification" else X[:, 0]
    for params in sampled_params(space):
        assert all(value in space[param] for param, value in params.items())
        model = build_candidate(name, task, {**CHEAP.get(name, {}), **params})
        built = final_step(model).get_params()
        assert {param: built[param] for param in params} == params
        if name in CHEAP:
            model.fit(pd.DataFrame(X), target)


def test_families_only_tuned_where_they_say_so():
    assert set(TUNED) == {"linear", "hist_boosting", "xgboost", "xgboost_dask", "mlp", "gru"}
    space = FAMILIES["mlp"].search_space("classification")
    assert space["hidden_sizes"] == Choice(((32,), (64, 32), (128, 64)))
    assert FAMILIES["hist_boosting"].search_space("regression")["max_leaf_nodes"] == IntRange(8, 64, log=True)

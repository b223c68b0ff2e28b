"""Batch predictions with the champion, on a real Prefect engine, MLflow registry and GX suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest

from models.evaluation import positive_scores
from pipelines.adapters.registry import Registry, RegistryError
from pipelines.config.errors import ValidationFailedError
from pipelines.config.project import Project
from pipelines.flows.cycle import retrain
from pipelines.flows.predict import predict
from tests.integration.batches import STOCK_BATCH, write

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]

MLOPS = str(Path(sys.executable).parent / "mlops")


@pytest.fixture(scope="module")
def trained(prefect_server, pulled_template, tmp_path_factory):
    """One project with a linear champion for each use case, shared by the module's tests."""
    root = tmp_path_factory.mktemp("predict") / "project"
    shutil.copytree(pulled_template, root, symlinks=True)
    project = Project(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        for name in ("marketing", "stock"):
            training = retrain(name, str(root), ["linear"]).training
            if training.champion is None:
                # A linear model need not beat the naive baselines on next-day direction; the
                # predictions under test only need some champion.
                Registry(project).set_champion(name, training.version, "a champion to score with",
                                               "tests")
        yield project


def marketing_rows(project: Project, count: int) -> pd.DataFrame:
    return pd.read_csv(project.data_dir / "marketing.csv", dtype={"customer_id": str}).tail(count)


def stock_rows(project: Project, per_ticker: int) -> pd.DataFrame:
    bars = pd.read_csv(project.data_dir / "stock.csv", dtype={"Ticker": str, "Date": str})
    return bars.groupby("Ticker").tail(per_ticker)


def champion_of(project: Project, model: str) -> str:
    return str(Registry(project).champion(model).version)


def test_marketing_writes_a_ranked_list_of_every_customer(trained, tmp_path):
    rows = marketing_rows(trained, 500)
    unlabelled = write(rows.drop(columns=["Purchase"]), tmp_path / "customers.csv")
    out = tmp_path / "ranked.csv"

    result = predict("marketing", str(unlabelled), str(trained.root), str(out))

    table = pd.read_csv(out, dtype={"customer_id": str})
    assert list(table.columns) == ["customer_id", "propensity", "decile"]
    assert result.rows == len(table) == len(rows)
    assert set(table["customer_id"]) == set(rows["customer_id"])
    assert table["propensity"].is_monotonic_decreasing and table["propensity"].between(0, 1).all()
    deciles = table["decile"].value_counts()
    assert sorted(deciles.index) == list(range(1, 11)) and deciles.between(49, 51).all()
    assert table["decile"].is_monotonic_increasing
    assert result.version == champion_of(trained, "marketing")

    # each customer's propensity is the champion's probability for that customer's row
    model = mlflow.sklearn.load_model(f"models:/marketing/{result.version}")
    expected = pd.Series(positive_scores(model, rows.drop(columns=["Purchase"]), "classification"),
                         index=rows["customer_id"])
    np.testing.assert_allclose(table["propensity"], expected[table["customer_id"]].to_numpy())

    # the label, when present, is ignored rather than rejected or used
    labelled = write(rows, tmp_path / "customers-with-label.csv")
    again = predict("marketing", str(labelled), str(trained.root), str(tmp_path / "again.csv"))
    pd.testing.assert_frame_equal(pd.read_csv(again.output, dtype={"customer_id": str}), table)


def test_stock_scores_each_tickers_latest_bar(trained, tmp_path):
    bars = stock_rows(trained, 5)
    out = tmp_path / "next-day.csv"

    result = predict("stock", str(write(bars, tmp_path / "bars.csv")), str(trained.root), str(out))

    table = pd.read_csv(out, dtype={"Date": str})
    assert list(table.columns) == ["Ticker", "Date", "p_up"]
    assert table["Ticker"].tolist() == sorted(bars["Ticker"].unique())
    assert table.set_index("Ticker")["Date"].to_dict() == bars.groupby("Ticker")["Date"].max().to_dict()
    assert table["p_up"].between(0, 1, inclusive="neither").all()
    assert result.version == champion_of(trained, "stock")

    # bars newer than the dataset: the prediction is for the day after each ticker's last new bar
    fresh = predict("stock", str(write(STOCK_BATCH, tmp_path / "new-bars.csv")), str(trained.root),
                    str(tmp_path / "fresh.csv"))
    fresh_table = pd.read_csv(fresh.output, dtype={"Date": str})
    assert fresh_table[["Ticker", "Date"]].values.tolist() == [["AAPL", "2013-03-05"], ["IBM", "2013-03-04"]]


def test_a_file_failing_validation_writes_nothing(trained, tmp_path):
    rows = marketing_rows(trained, 20).drop(columns=["Purchase"]).reset_index(drop=True)
    rows.loc[3, "MOSTYPE"] = 99
    out = tmp_path / "never.csv"

    with pytest.raises(ValidationFailedError, match="nothing scored: .*MOSTYPE") as failed:
        predict("marketing", str(write(rows, tmp_path / "bad.csv")), str(trained.root), str(out))

    assert "\n" not in str(failed.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_a_model_whose_files_changed_is_refused(trained, tmp_path):
    """The champion's pickle altered in the artifact store after registration: nothing is loaded."""
    from pipelines.adapters.integrity import DIGEST_TAG, IntegrityError

    registry = Registry(trained)
    champion = registry.champion("marketing")
    assert len(champion.tags[DIGEST_TAG]) == 64
    model_id = champion.source.removeprefix("models:/")
    [pickle] = (trained.root / "mlartifacts").glob(f"marketing/models/{model_id}/artifacts/model.pkl")
    original = pickle.read_bytes()
    pickle.write_bytes(original + b"\0")
    try:
        rows = write(marketing_rows(trained, 5).drop(columns=["Purchase"]), tmp_path / "in.csv")
        with pytest.raises(IntegrityError, match=rf"model marketing v{champion.version}: its files changed "
                                                 "after registration"):
            predict("marketing", str(rows), str(trained.root), str(tmp_path / "out.csv"))
        assert not (tmp_path / "out.csv").exists()
    finally:
        pickle.write_bytes(original)


def test_without_a_champion_the_error_says_what_to_do(project, monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    rows = write(marketing_rows(project, 20), tmp_path / "customers.csv")

    expected = r"no champion for model 'marketing': run `mlops run --use-case marketing` first"
    with pytest.raises(RegistryError, match=expected):
        predict("marketing", str(rows), str(project.root))
    assert not (project.root / "predictions").exists()


def test_the_command_writes_to_predictions_and_says_what_it_used(trained, tmp_path, prefect_server):
    bars = write(stock_rows(trained, 3), tmp_path / "bars.csv")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | {
        "PREFECT_API_URL": prefect_server}

    done = subprocess.run([MLOPS, "predict", "--use-case", "stock", str(bars)], cwd=trained.root, env=env,
                          capture_output=True, text=True, timeout=300, check=False)

    assert done.returncode == 0, done.stderr
    written = sorted((trained.root / "predictions").glob("stock-*.csv"))
    assert len(written) == 1
    assert f"wrote 5 predictions to {written[0]}" in done.stdout
    assert f"stock v{champion_of(trained, 'stock')} (champion)" in done.stdout

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from pipelines.adapters.files import write_atomically
from pipelines.config.definitions import parse
from pipelines.config.project import Project
from pipelines.config.usecase import DEFAULT_HISTORY
from pipelines.nodes import scoring

USECASES = Path(__file__).resolve().parents[2] / "pipelines" / "usecases"


def spec_of(tmp_path: Path, name: str, **changes) -> scoring.ScoringLayout:
    raw = yaml.safe_load((USECASES / f"{name}.yaml").read_text()) | changes
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return scoring.layout(parse(path))


def bars(ticker: str, dates: list[str], start: float = 10.0) -> pd.DataFrame:
    close = start + np.arange(len(dates), dtype=float)
    return pd.DataFrame({"Ticker": ticker, "Date": dates, "Open": close, "High": close, "Low": close,
                         "Close": close, "Volume": 1000, "Adj Close": close})


def days(first: str, count: int) -> list[str]:
    return list(pd.bdate_range(first, periods=count).strftime("%Y-%m-%d"))


def test_shipped_scoring_sections():
    marketing = scoring.layout(parse(USECASES / "marketing.yaml"))
    assert (marketing.output, marketing.key, marketing.score_column) == (
        "ranked_list", ("customer_id",), "propensity")
    assert marketing.label_columns == ("Purchase",)
    stock = scoring.layout(parse(USECASES / "stock.yaml"))
    assert (stock.output, stock.group, stock.history, stock.score_column) == (
        "latest_per_group", "Ticker", 60, "p_up")
    assert stock.label_columns == () and stock.order_column == "Date"


def test_score_column_follows_the_task(tmp_path):
    assert spec_of(tmp_path, "stock", task="regression").score_column == "predicted_return"


def test_defaults_without_a_scoring_section(tmp_path):
    stock = spec_of(tmp_path, "stock", scoring=None)
    assert (stock.output, stock.group, stock.history, stock.score_column) == (
        "latest_per_group", "Ticker", DEFAULT_HISTORY, "probability")
    assert spec_of(tmp_path, "marketing", scoring=None).output == "ranked_list"


def test_ranked_list_sorts_breaks_ties_by_key_and_splits_into_deciles(tmp_path):
    spec = spec_of(tmp_path, "marketing")
    frame = pd.DataFrame({"customer_id": [f"c{i:03d}" for i in range(95)]})
    scores = np.r_[np.linspace(0.9, 0.1, 93), 0.5, 0.5]
    ranked = scoring.ranked_list(frame, scores, spec)
    assert list(ranked.columns) == ["customer_id", "propensity", "decile"]
    assert ranked["propensity"].is_monotonic_decreasing
    tied = ranked[ranked["propensity"] == 0.5]["customer_id"].tolist()
    assert tied == sorted(tied) and len(tied) >= 2
    counts = ranked["decile"].value_counts().sort_index()
    assert list(counts.index) == list(range(1, 11)) and counts.between(9, 10).all()
    assert ranked["decile"].is_monotonic_increasing


def test_history_prepends_earlier_rows_of_the_same_tickers_only(tmp_path):
    spec = spec_of(tmp_path, "stock", scoring={"history": 3})
    dataset = pd.concat([bars("AAA", days("2024-01-01", 10)), bars("BBB", days("2024-01-01", 10)),
                         bars("CCC", days("2024-01-01", 10))], ignore_index=True)
    # AAA: its last two dataset days again plus a new one; BBB: a day within the dataset.
    file = pd.concat([bars("AAA", days("2024-01-11", 3), start=50.0),
                      bars("BBB", ["2024-01-05"], start=70.0)], ignore_index=True)
    combined, from_file = scoring.with_history(file, dataset, spec)

    history = combined[~from_file]
    assert history.groupby("Ticker")["Date"].apply(list).to_dict() == {
        "AAA": ["2024-01-08", "2024-01-09", "2024-01-10"],
        "BBB": ["2024-01-02", "2024-01-03", "2024-01-04"],
    }
    pd.testing.assert_frame_equal(combined[from_file].reset_index(drop=True), file)

    latest = scoring.latest_per_group(combined, from_file, np.linspace(0.1, 0.9, len(combined)), spec)
    assert list(latest.columns) == ["Ticker", "Date", spec.score_column]
    assert latest[["Ticker", "Date"]].values.tolist() == [["AAA", "2024-01-15"], ["BBB", "2024-01-05"]]
    assert scoring.history_shortfalls(combined, from_file, spec) == {}
    short = scoring.with_history(file, dataset[dataset["Date"] > "2024-01-03"], spec)
    assert scoring.history_shortfalls(*short, spec) == {"BBB": 1}


def test_file_rows_win_over_dataset_rows_with_the_same_key(tmp_path):
    spec = spec_of(tmp_path, "stock", scoring={"history": 5})
    dataset = bars("AAA", days("2024-01-01", 6))
    file = bars("AAA", days("2024-01-01", 6)[2:], start=99.0)
    combined, from_file = scoring.with_history(file, dataset, spec)
    assert combined["Date"].tolist() == days("2024-01-01", 6)
    assert combined.loc[from_file, "Close"].tolist() == [99.0, 100.0, 101.0, 102.0]
    assert scoring.with_history(file, dataset, spec_of(tmp_path, "stock", scoring={"history": 0}))[
        1].all()


def test_default_output_never_reuses_a_name_and_writes_whole_files(tmp_path):
    project = Project(tmp_path)
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    first = scoring.default_output(project, "stock", now)
    assert first == tmp_path / "predictions" / "stock-20250102T030405Z.csv"
    write_atomically(pd.DataFrame({"a": [1, 2]}), first)
    second = scoring.default_output(project, "stock", now)
    assert second.name == "stock-20250102T030405Z-2.csv"
    assert pd.read_csv(first)["a"].tolist() == [1, 2]
    assert [p.name for p in first.parent.iterdir()] == [first.name]

"""Valid batches for the shipped use cases, and the bad variants every gate must reject."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pandas as pd

STOCK_BATCH = pd.DataFrame({
    "Ticker": ["AAPL", "AAPL", "IBM"],
    "Date": ["2013-03-04", "2013-03-05", "2013-03-04"],
    "Open": [431.0, 427.0, 200.0],
    "High": [434.0, 441.0, 203.0],
    "Low": [427.5, 426.0, 199.0],
    "Close": [430.0, 438.0, 202.5],
    "Volume": [17000000, 18000000, 3000000],
    "Adj Close": [430.0, 438.0, 202.5],
})


def marketing_batch(project_root: Path, rows: int = 3) -> pd.DataFrame:
    """Real customer rows under new pseudonymous keys."""
    sample = pd.read_csv(project_root / "data" / "marketing.csv", nrows=rows, dtype={"customer_id": str})
    sample["customer_id"] = [
        "N" + hashlib.sha256(f"new-{i}".encode()).hexdigest()[:12] for i in range(rows)
    ]
    return sample


def _set(column: str, row: int, value) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy().astype({column: object})
        frame.loc[row, column] = value
        return frame
    return change


# name -> (how to spoil a valid stock batch, words the error must contain)
STOCK_SPOILERS: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], str]] = {
    "missing required column": (lambda f: f.drop(columns=["Volume"]), "missing Volume"),
    "unknown extra column": (lambda f: f.assign(Sector="Tech"), "unknown Sector"),
    "text in a numeric column": (_set("Close", 1, "abc"), "Close must be of type"),
    "NaN value": (_set("Open", 0, float("nan")), "Open must not be empty or NaN"),
    "infinite value": (_set("High", 0, float("inf")), "High must be >= 0 and <= 10000000"),
    "negative price": (lambda f: f.assign(Low=[-1.0, 426.0, 199.0]), "Low must be >= 0"),
    "negative volume": (_set("Volume", 2, -5), "Volume must be >= 0"),
    "High below Low": (lambda f: f.assign(High=[420.0, 441.0, 203.0]), "High must be >= Low"),
    "duplicated key, different values": (
        lambda f: pd.concat([f, f.iloc[[0]].assign(Close=431.0)], ignore_index=True),
        "(Ticker, Date) must be unique"),
    "unparseable date": (_set("Date", 2, "04/03/2013"), "Date must be a date written as %Y-%m-%d"),
    "impossible date": (_set("Date", 2, "2013-02-30"), "Date must be a date written as %Y-%m-%d"),
    "date in the future": (_set("Date", 2, "2099-01-02"), "Date must not lie in the future"),
    "dates out of order within a ticker": (
        lambda f: f.iloc[[1, 0, 2]].reset_index(drop=True), "Date must increase within each Ticker"),
}

MARKETING_SPOILERS: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], str]] = {
    "unknown category code": (_set("MOSTYPE", 0, 99), "MOSTYPE must be one of the allowed values"),
    "target outside Yes/No": (_set("Purchase", 1, "Maybe"), "Purchase must be one of the allowed values"),
    "duplicated customer key": (
        lambda f: f.assign(customer_id=[f.customer_id[0]] * len(f)), "customer_id must be unique"),
}


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path

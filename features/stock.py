"""Daily stock bars to model features, with no information from after each row's close.

Every feature of a row is computed from that ticker's bars up to and including the row's own day,
so a model trained on them never sees the future. Rolling windows, shifts and exponential averages
are all backward-looking; the only values that look forward are the targets, which live in
separate functions so they cannot slip into the feature matrix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

TICKER_COLUMN = "Ticker"
DATE_COLUMN = "Date"
PRICE_COLUMNS = ("Open", "High", "Low", "Close", "Adj Close")
REQUIRED_COLUMNS = (TICKER_COLUMN, DATE_COLUMN, *PRICE_COLUMNS, "Volume")


def _check_columns(frame: pd.DataFrame) -> None:
    missing = [name for name in REQUIRED_COLUMNS if name not in frame.columns]
    if missing:
        raise ValueError(f"stock frame lacks columns {missing}")


def _chronological_positions(frame: pd.DataFrame) -> np.ndarray:
    """Row positions that sort the frame by ticker, then date.

    Positions rather than index labels, so that a frame with a duplicated or unordered index is
    still put back exactly as it came.
    """
    dates = pd.to_datetime(frame[DATE_COLUMN]).to_numpy()
    tickers = frame[TICKER_COLUMN].astype(str).to_numpy()
    positions = np.lexsort((dates, tickers))
    ordered_tickers, ordered_dates = tickers[positions], dates[positions]
    repeated = (ordered_tickers[1:] == ordered_tickers[:-1]) & (ordered_dates[1:] == ordered_dates[:-1])
    if repeated.any():
        # Two bars for one day would make "the previous day" ambiguous and silently shift every lag.
        first = int(np.argmax(repeated))
        raise ValueError(f"duplicate bar for {ordered_tickers[first]} on {ordered_dates[first]}")
    return positions


def _in_original_order(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    restored = np.empty_like(values)
    restored[positions] = values
    return restored


def _wilder_average(series: pd.Series, period: int) -> pd.Series:
    # Wilder's smoothing is an exponential average with alpha 1/period; it only looks backwards.
    return series.ewm(alpha=1.0 / period, adjust=False, min_periods=period).mean()


class StockFeatures(BaseEstimator, TransformerMixin):
    """Per-ticker technical features of daily bars, one output row per input row.

    Parameters
    ----------
    lags:
        Horizons, in trading days, of the log returns on adjusted close.
    windows:
        Lengths of the rolling mean and rolling volatility of daily log returns.
    volume_window:
        Length of the mean that today's volume is compared with.
    rsi_period, macd_fast, macd_slow, macd_signal:
        Spans of the RSI-style and MACD-style indicators.
    window:
        How many days of feature vectors each output row carries. With ``window > 1`` the row also
        holds the ``window - 1`` previous days of the same ticker, oldest block first, so a recurrent
        model can reshape it to ``(window, n_base_features_)``.

    Rows without enough history for a feature get 0 there, which for every feature here means
    "no move" (returns, gaps, volume changes, centred RSI, MACD), rather than NaN.
    """

    def __init__(
        self,
        lags: Sequence[int] = (1, 2, 5, 10, 20),
        windows: Sequence[int] = (5, 20),
        volume_window: int = 20,
        rsi_period: int = 14,
        macd_fast: int = 12,
        macd_slow: int = 26,
        macd_signal: int = 9,
        window: int = 1,
    ) -> None:
        self.lags = lags
        self.windows = windows
        self.volume_window = volume_window
        self.rsi_period = rsi_period
        self.macd_fast = macd_fast
        self.macd_slow = macd_slow
        self.macd_signal = macd_signal
        self.window = window

    def _validate_params(self) -> None:
        if not self.lags or any(int(lag) < 1 for lag in self.lags):
            raise ValueError(f"lags must be positive day counts, got {self.lags!r}")
        # A standard deviation needs at least two returns.
        if not self.windows or any(int(length) < 2 for length in self.windows):
            raise ValueError(f"windows must be at least 2 days, got {self.windows!r}")
        for name in ("volume_window", "rsi_period", "macd_fast", "macd_slow", "macd_signal", "window"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if self.macd_fast >= self.macd_slow:
            raise ValueError("macd_fast must be shorter than macd_slow")

    def _base_feature_names(self) -> list[str]:
        names = [f"ret_{int(lag)}" for lag in self.lags]
        for length in self.windows:
            names += [f"ret_mean_{int(length)}", f"volatility_{int(length)}"]
        names += [
            "hl_range",
            "overnight_gap",
            "volume_change_1",
            f"volume_vs_mean_{int(self.volume_window)}",
            f"rsi_{int(self.rsi_period)}",
            "macd",
            "macd_signal",
            "macd_hist",
        ]
        return names

    def _feature_names(self, base_names: list[str]) -> list[str]:
        names: list[str] = []
        for days_back in range(int(self.window) - 1, 0, -1):
            names += [f"{name}__lag{days_back}" for name in base_names]
        return names + base_names

    def fit(self, frame: pd.DataFrame, y: object = None) -> StockFeatures:
        """Check the parameters and the columns; nothing is learned from the data."""
        self._validate_params()
        _check_columns(frame)
        self.base_feature_names_ = self._base_feature_names()
        self.n_base_features_ = len(self.base_feature_names_)
        self.feature_names_out_ = self._feature_names(self.base_feature_names_)
        return self

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        return np.asarray(self.feature_names_out_, dtype=object)

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "feature_names_out_")
        _check_columns(frame)
        positions = _chronological_positions(frame)
        ordered = frame.iloc[positions].reset_index(drop=True)
        blocks = [
            self._ticker_features(bars)
            for _, bars in ordered.groupby(ordered[TICKER_COLUMN].astype(str), sort=False)
        ]
        if blocks:
            # groupby keeps the ordered frame's labels, so sorting by them lines rows up with positions.
            features = pd.concat(blocks).sort_index().to_numpy(dtype=float)
        else:
            features = np.empty((0, len(self.feature_names_out_)))
        return pd.DataFrame(
            _in_original_order(features, positions), index=frame.index, columns=self.feature_names_out_
        )

    def _ticker_features(self, bars: pd.DataFrame) -> pd.DataFrame:
        """Features of one ticker's bars, already in date order."""
        adj_close = bars["Adj Close"].astype(float)
        # Open/High/Low are raw prices; rescaling them like the close keeps splits and dividends
        # from showing up as price jumps against the adjusted close.
        adjustment = adj_close / bars["Close"].astype(float)
        adj_open = bars["Open"].astype(float) * adjustment
        adj_high = bars["High"].astype(float) * adjustment
        adj_low = bars["Low"].astype(float) * adjustment
        volume = bars["Volume"].astype(float)

        log_price = np.log(adj_close)
        daily_return = log_price.diff()
        columns: dict[str, pd.Series] = {}
        for lag in self.lags:
            columns[f"ret_{int(lag)}"] = log_price - log_price.shift(int(lag))
        for length in self.windows:
            rolling = daily_return.rolling(int(length), min_periods=int(length))
            columns[f"ret_mean_{int(length)}"] = rolling.mean()
            columns[f"volatility_{int(length)}"] = rolling.std()

        columns["hl_range"] = (adj_high - adj_low) / adj_close
        columns["overnight_gap"] = adj_open / adj_close.shift(1) - 1.0
        # log1p keeps a zero-volume day (a halt) finite instead of an infinite change.
        log_volume = np.log1p(volume)
        columns["volume_change_1"] = log_volume.diff()
        mean_volume = volume.rolling(int(self.volume_window), min_periods=int(self.volume_window)).mean()
        columns[f"volume_vs_mean_{int(self.volume_window)}"] = log_volume - np.log1p(mean_volume)

        price_change = adj_close.diff()
        average_gain = _wilder_average(price_change.clip(lower=0.0), int(self.rsi_period))
        average_loss = _wilder_average((-price_change).clip(lower=0.0), int(self.rsi_period))
        # Centred on 0 so the fill value for missing history reads as "neutral" rather than "oversold".
        columns[f"rsi_{int(self.rsi_period)}"] = average_gain / (average_gain + average_loss) - 0.5

        fast = adj_close.ewm(span=int(self.macd_fast), adjust=False, min_periods=int(self.macd_fast)).mean()
        slow = adj_close.ewm(span=int(self.macd_slow), adjust=False, min_periods=int(self.macd_slow)).mean()
        # Divided by price so that the indicator means the same for a $5 and a $500 stock.
        macd = (fast - slow) / adj_close
        signal = macd.ewm(span=int(self.macd_signal), adjust=False, min_periods=int(self.macd_signal)).mean()
        columns["macd"] = macd
        columns["macd_signal"] = signal
        columns["macd_hist"] = macd - signal

        base = pd.DataFrame(columns, index=bars.index)[self.base_feature_names_]
        base = base.replace([np.inf, -np.inf], np.nan).fillna(0.0)
        if int(self.window) == 1:
            return base
        history = [
            base.shift(days_back).fillna(0.0).add_suffix(f"__lag{days_back}")
            for days_back in range(int(self.window) - 1, 0, -1)
        ]
        return pd.concat([*history, base], axis=1)


def _next_day(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Today's and the next trading day's adjusted close of the same ticker, in the input's order."""
    _check_columns(frame)
    positions = _chronological_positions(frame)
    ordered = frame.iloc[positions].reset_index(drop=True)
    today = ordered["Adj Close"].astype(float)
    tomorrow = today.groupby(ordered[TICKER_COLUMN].astype(str), sort=False).shift(-1)
    return (
        pd.Series(_in_original_order(today.to_numpy(), positions), index=frame.index),
        pd.Series(_in_original_order(tomorrow.to_numpy(), positions), index=frame.index),
    )


def next_day_direction(frame: pd.DataFrame) -> pd.Series:
    """1.0 if the ticker's next trading day closes higher (adjusted) than this day, else 0.0.

    Each ticker's last row has no next day and gets NaN, so callers must drop it rather than
    train on a made-up label.
    """
    today, tomorrow = _next_day(frame)
    direction = (tomorrow > today).astype(float).where(tomorrow.notna())
    return direction.rename("next_day_direction")


def next_day_return(frame: pd.DataFrame) -> pd.Series:
    """Log return from this day's adjusted close to the ticker's next one; NaN on its last row."""
    today, tomorrow = _next_day(frame)
    return np.log(tomorrow / today).rename("next_day_return")

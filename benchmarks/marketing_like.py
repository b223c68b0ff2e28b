"""Any number of new customers that look like the marketing sample, for measuring the pipeline at scale.

    .venv/bin/python benchmarks/marketing_like.py --rows 1000000 --output marketing.csv [--seed 0]

Each row is a new combination, not a copy of a real customer: the label is drawn at the sample's
base rate, the customer main type (MOSHOOFD) from its distribution among real customers of that
label, and every other attribute independently from its distribution among real customers of the
same label and main type. The label therefore stays learnable from the attributes, while no row
repeats a real one for a model to memorise. A (label, main type) group with too few real rows to
stand for a distribution borrows the attributes of the whole label, except the subtype (MOSTYPE),
which must stay one of its main type's subtypes.

The values have the sample's columns, codes and ranges, so the rows pass the use case's expectation
suite, and the keys have the sample's format (``C`` and 12 hex digits), unique and distinct from
the sample's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from features.marketing import ATTRIBUTE_COLUMNS, KEY_COLUMN, TARGET_COLUMN  # noqa: E402

MAIN_TYPE, SUBTYPE = "MOSHOOFD", "MOSTYPE"
# Fewer real rows than this in a (label, main type) group make its per-column distributions
# too coarse: a handful of rows would be replayed almost whole.
MIN_GROUP_ROWS = 30
KEY_BITS = 48
# An odd multiplier makes i -> i * multiplier (mod 2**48) a bijection, so keys never collide.
_KEY_MULTIPLIER = 0x9E3779B97F4B


def sample_rows() -> pd.DataFrame:
    """The shipped marketing sample, read from the DVC remote committed with the repository."""
    from tests.sample_data import sample_csv

    return pd.read_csv(sample_csv("marketing.csv"))


def customer_keys(rows: int, seed: int, taken: Collection[str] = ()) -> list[str]:
    """``rows`` distinct keys in the sample's format, none of them in ``taken``."""
    offset = np.random.default_rng([seed, 1]).integers(0, 2**KEY_BITS, dtype=np.uint64)
    mask = np.uint64(2**KEY_BITS - 1)
    keys: list[str] = []
    start = 0
    while len(keys) < rows:
        wanted = rows - len(keys)
        index = np.arange(start, start + wanted, dtype=np.uint64)
        # uint64 arithmetic wraps modulo 2**64, so the mask leaves the product modulo 2**48.
        codes = (index * np.uint64(_KEY_MULTIPLIER) + offset) & mask
        keys += [key for key in (f"C{code:012x}" for code in codes.tolist()) if key not in taken]
        start += wanted
    return keys


def _draw_columns(rng: np.random.Generator, source: np.ndarray, rows: int) -> np.ndarray:
    """``rows`` rows whose every column is drawn on its own from that column of ``source``."""
    picks = rng.integers(0, len(source), size=(rows, source.shape[1]), dtype=np.int32)
    return np.take_along_axis(source, picks, axis=0)


def marketing_like(rows: int, seed: int = 0, real: pd.DataFrame | None = None) -> pd.DataFrame:
    """``rows`` new marketing customers drawn from the distributions of ``real`` (default: the sample)."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    real = sample_rows() if real is None else real
    rng = np.random.default_rng(seed)
    others = [c for c in ATTRIBUTE_COLUMNS if c not in (MAIN_TYPE, SUBTYPE)]
    is_buyer = real[TARGET_COLUMN].eq("Yes").to_numpy()
    labels = rng.random(rows) < is_buyer.mean()

    attributes = np.empty((rows, len(ATTRIBUTE_COLUMNS)), dtype=np.int64)
    position = {name: i for i, name in enumerate(ATTRIBUTE_COLUMNS)}
    other_positions = [position[c] for c in others]
    for label in (False, True):
        of_label = real[is_buyer == label]
        wanted = np.flatnonzero(labels == label)
        main_types = rng.choice(of_label[MAIN_TYPE].to_numpy(), size=len(wanted))
        for main_type in np.unique(main_types):
            targets = wanted[main_types == main_type]
            group = of_label[of_label[MAIN_TYPE] == main_type]
            pool = group if len(group) >= MIN_GROUP_ROWS else of_label
            attributes[targets, position[MAIN_TYPE]] = main_type
            attributes[targets, position[SUBTYPE]] = rng.choice(group[SUBTYPE].to_numpy(), size=len(targets))
            drawn = _draw_columns(rng, pool[others].to_numpy(dtype=np.int64), len(targets))
            attributes[targets[:, None], other_positions] = drawn

    frame = pd.DataFrame(attributes, columns=ATTRIBUTE_COLUMNS)
    frame.insert(0, KEY_COLUMN, customer_keys(rows, seed, set(real[KEY_COLUMN])))
    frame[TARGET_COLUMN] = np.where(labels, "Yes", "No")
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, required=True, help="CSV file to write")
    args = parser.parse_args()
    marketing_like(args.rows, args.seed).to_csv(args.output, index=False)
    print(f"{args.output}: {args.rows} rows")


if __name__ == "__main__":
    main()

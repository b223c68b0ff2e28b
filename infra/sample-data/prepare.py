"""Rebuild the shipped sample datasets from the public source files.

    python infra/sample-data/prepare.py SOURCE_FOLDER DATA_FOLDER

SOURCE_FOLDER holds stocks_daily.csv.gz and caravan.csv (see PROVENANCE.md).
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import sys
from pathlib import Path

import pandas as pd


def customer_key(row_number: int) -> str:
    digest = hashlib.sha256(f"coil2000-caravan-{row_number}".encode()).hexdigest()
    return "C" + digest[:12]


def main(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    # Byte for byte: a pandas round trip would rewrite some floats' last digits.
    with gzip.open(source / "stocks_daily.csv.gz", "rb") as packed, open(
        target / "stock.csv", "wb"
    ) as plain:
        shutil.copyfileobj(packed, plain)
    stocks = pd.read_csv(target / "stock.csv")

    customers = pd.read_csv(source / "caravan.csv")
    keys = [customer_key(i) for i in range(len(customers))]
    if len(set(keys)) != len(keys):
        raise SystemExit("customer keys collide; lengthen the digest")
    customers.insert(0, "customer_id", keys)
    customers.to_csv(target / "marketing.csv", index=False)
    print(f"stock.csv: {len(stocks)} rows; marketing.csv: {len(customers)} rows")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))

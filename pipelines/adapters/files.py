"""Files in and out: reading an incoming CSV (a one-line reason for anything unreadable), keeping a
rejected file in quarantine with its report, writing an output whole or not at all."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gzip
import io
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from pipelines.adapters.intent import replace_file
from pipelines.config.errors import BadInputError
from pipelines.config.project import Project
from pipelines.config.usecase import UseCase

_SNIFF_BYTES = 64 * 1024
_OTHER_DELIMITERS = (";", "\t", "|")


def _head_bytes(path: Path) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            return stream.read(_SNIFF_BYTES)
    except (OSError, EOFError) as exc:
        raise BadInputError(f"{path}: cannot be read ({exc})") from exc


def _check_is_text(path: Path, head: bytes) -> None:
    if not head.strip():
        raise BadInputError(f"{path}: the file is empty")
    if b"\x00" in head:
        raise BadInputError(f"{path}: not a CSV file (binary content)")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the sniff boundary is still text.
        if exc.start < len(head) - 4:
            raise BadInputError(f"{path}: not a CSV file (not UTF-8 text)") from exc


def _numeric_where_possible(column: pd.Series) -> pd.Series:
    """Turn numeric-looking text into numbers, cell by cell, leaving the rest as text.

    pandas reads a whole column as text when one cell is text; converting the
    others lets the type expectation point at the cells that are really wrong.
    """
    parsed = pd.to_numeric(column, errors="coerce")
    if parsed.notna().sum() == 0:
        return column
    as_numbers = parsed.astype(object).where(parsed.notna(), None)
    integral = parsed.notna() & (parsed % 1 == 0) & parsed.abs().lt(2**53)
    as_numbers[integral] = parsed[integral].astype("int64")
    return column.astype(object).where(parsed.isna() | column.isna(), as_numbers)


def _return_freed_memory() -> None:
    """Hand the C heap's free pages back to the operating system, where the C library is glibc.

    The CSV parser frees its chunk buffers into the heap, and glibc keeps them: after a million
    rows that is most of a gigabyte the training that follows could use. Elsewhere it is a no-op.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


def read_table(path: Path | str, use_case: UseCase) -> pd.DataFrame:
    """Read ``path`` as a CSV table of ``use_case``; structure only, no business rules."""
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{path}: file not found")
    if not path.is_file():
        raise BadInputError(f"{path}: not a file")
    _check_is_text(path, _head_bytes(path))
    try:
        frame = pd.read_csv(
            path, dtype={name: str for name in use_case.string_columns}, skipinitialspace=True
        )
    except pd.errors.EmptyDataError as exc:
        raise BadInputError(f"{path}: the file is empty") from exc
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().splitlines()[-1]
        raise BadInputError(f"{path}: malformed CSV ({detail})") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadInputError(f"{path}: not a readable CSV file ({exc})") from exc

    if len(frame.columns) == 1:
        header = str(frame.columns[0])
        for delimiter in _OTHER_DELIMITERS:
            if delimiter in header:
                shown = "\\t" if delimiter == "\t" else delimiter
                raise BadInputError(
                    f"{path}: columns are separated by '{shown}'; expected a comma-separated file"
                )
    if frame.empty:
        raise BadInputError(f"{path}: has a header but no data rows")
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed: ")]
    if unnamed:
        raise BadInputError(f"{path}: {len(unnamed)} column(s) have no name in the header")

    for name in frame.columns:
        if name not in use_case.string_columns and frame[name].dtype == object:
            frame[name] = _numeric_where_possible(frame[name])
    _return_freed_memory()
    return frame


def quarantine(project: Project, use_case: str, source: Path, reason: str,
               report: dict | None = None) -> Path:
    """Copy ``source`` aside with a text and a JSON report; returns the copy's path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = project.quarantine_dir
    folder.mkdir(parents=True, exist_ok=True)
    kept = folder / f"{stamp}-{use_case}-{source.name}"
    if source.is_file():
        shutil.copy2(source, kept)
    details = {"use_case": use_case, "source": str(source), "rejected_at": stamp,
               "reason": reason, "report": report}
    kept.with_name(kept.name + ".report.json").write_text(json.dumps(details, indent=2,
                                                                     default=str))
    text = report.get("text") if report else None
    kept.with_name(kept.name + ".report.txt").write_text(f"{reason}\n\n{text or ''}".rstrip() + "\n")
    return kept


def write_atomically(table: pd.DataFrame, path: Path) -> None:
    """Write ``table`` as CSV so that ``path`` is either absent, the old file, or the whole new one."""
    def write(stream: BinaryIO) -> None:
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        table.to_csv(text, index=False)
        text.flush()
        text.detach()

    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, write, path.parent)

"""The end-of-cycle leaderboard: candidates, baselines and the champion on the same holdout."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Entry:
    name: str
    kind: str
    """candidate, baseline or champion."""
    holdout: dict[str, float] = field(default_factory=dict)
    cv_primary: float = math.nan
    cv_primary_std: float = math.nan
    fit_seconds: float = math.nan
    note: str = ""
    interval: tuple[float, float] | None = None
    """The holdout primary metric's confidence interval (low, high)."""


def _number(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


def ordered(entries: list[Entry], primary: str, greater_is_better: bool) -> list[Entry]:
    """Best holdout value of the primary metric first; entries without one last."""
    def key(entry: Entry) -> tuple[bool, float]:
        value = entry.holdout.get(primary, math.nan)
        missing = value is None or math.isnan(value)
        return missing, (0.0 if missing else (-value if greater_is_better else value))

    return sorted(entries, key=key)


def table(entries: list[Entry], metrics: list[str], primary: str, greater_is_better: bool,
          confidence: float | None = None) -> tuple[list[str], list[list[str]]]:
    """Rows best first; with ``confidence``, the holdout primary metric shows its interval."""
    ranged = f"holdout {primary} [{confidence:.0%} interval]" if confidence else f"holdout {primary}"
    header = ["model", "kind", f"cv {primary}",
              *[ranged if m == primary else f"holdout {m}" for m in metrics], "fit s", "note"]
    rows = []
    for entry in ordered(entries, primary, greater_is_better):
        cv = _number(entry.cv_primary)
        if cv != "-" and not math.isnan(entry.cv_primary_std):
            cv += f" ± {entry.cv_primary_std:.4f}"
        fit = "-" if math.isnan(entry.fit_seconds) else f"{entry.fit_seconds:.1f}"
        holdout = [_number(entry.holdout.get(m, math.nan)) for m in metrics]
        if confidence and entry.interval and not any(map(math.isnan, entry.interval)) and primary in metrics:
            holdout[metrics.index(primary)] += f" [{entry.interval[0]:.4f}, {entry.interval[1]:.4f}]"
        rows.append([entry.name, entry.kind, cv, *holdout, fit, entry.note])
    return header, rows


def render_text(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(header: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *[line(r) for r in rows]])


def render_csv(header: list[str], rows: list[list[str]]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()

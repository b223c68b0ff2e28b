"""The ranges a family's hyperparameters are searched over, declared as plain data.

A space maps a hyperparameter name to a ``FloatRange``, an ``IntRange`` or a ``Choice``. Keeping
the declaration free of any optimiser lets a family state its space without loading one.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        _check_bounds(self.low, self.high, self.log)

    def __contains__(self, value: object) -> bool:
        return _is_number(value, Real) and self.low <= value <= self.high


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        _check_bounds(self.low, self.high, self.log)

    def __contains__(self, value: object) -> bool:
        return _is_number(value, Integral) and self.low <= value <= self.high


@dataclass(frozen=True)
class Choice:
    options: tuple[Any, ...]
    """Any values, tuples included (e.g. layer sizes); the search picks one of them as it is."""

    def __post_init__(self) -> None:
        if not self.options:
            raise ValueError("a Choice needs at least one option")

    def __contains__(self, value: object) -> bool:
        return any(_same(value, option) for option in self.options)


Dimension = FloatRange | IntRange | Choice
SearchSpace = dict[str, Dimension]


def _check_bounds(low: float, high: float, log: bool) -> None:
    if low > high:
        raise ValueError(f"a range needs low <= high, got [{low}, {high}]")
    if log and low <= 0:
        raise ValueError(f"a log range needs a positive low bound, got {low}")


def _is_number(value: object, kind: type) -> bool:
    # numpy scalars count (they register as Real/Integral); booleans, though Integral, do not.
    return isinstance(value, kind) and not isinstance(value, bool)


def _same(value: object, option: object) -> bool:
    # Lists and tuples of the same numbers are the same layer sizes: a default may be either.
    if isinstance(value, list | tuple) and isinstance(option, list | tuple):
        return tuple(value) == tuple(option)
    return value == option

"""Code named in a definition by import path, ``package.module:attribute``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def is_reference(value: str) -> bool:
    return ":" in value


def resolve_reference(reference: str) -> Callable[..., Any]:
    """Import ``package.module:attribute``; a ValueError says what is wrong in one line."""
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{reference!r} must look like package.module:name")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{reference!r}: cannot import {module_name} ({exc})") from None
    try:
        found = getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"{reference!r}: {module_name} has no {attribute}") from None
    if not callable(found):
        raise ValueError(f"{reference!r} is not callable")
    return found

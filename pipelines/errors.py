"""Errors the command line reports as one readable line instead of a traceback."""

from __future__ import annotations


class MlopsError(Exception):
    """Base class: the message is the one-line reason shown to the user."""

    exit_code = 1


class ProjectNotFoundError(MlopsError):
    pass


class UseCaseError(MlopsError):
    pass


class BadInputError(MlopsError):
    """The input file cannot be read as a table of the use case."""


class ValidationFailedError(MlopsError):
    """The data was read but broke expectations; ``report`` says which."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class VersioningError(MlopsError):
    """DVC could not record, push or restore a data version."""

"""Errors the command line reports as one readable line instead of a traceback."""

from __future__ import annotations


class MlopsError(Exception):
    """Base class: the message is the one-line reason shown to the user."""

    exit_code = 1


class ProjectNotFoundError(MlopsError):
    pass


class UseCaseError(MlopsError):
    """A use case definition, or the data it names, is wrong; ``problems`` holds one line each."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]

    @classmethod
    def from_problems(cls, problems: list[str]) -> UseCaseError:
        more = f" (and {len(problems) - 1} more: see `mlops check`)" if len(problems) > 1 else ""
        return cls(problems[0] + more, problems)


class BadInputError(MlopsError):
    """The input file cannot be read as a table of the use case."""


class ValidationFailedError(MlopsError):
    """The data was read but broke expectations; ``report`` says which."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class VersioningError(MlopsError):
    """DVC could not record, push or restore a data version."""


class SettingsError(MlopsError):
    """An environment variable the product reads has a value it cannot use."""


class ServiceError(MlopsError):
    """A service the command needs (the MLflow store, the Prefect API, a DVC remote) failed."""

    exit_code = 3



class AuthenticationError(ServiceError):
    """A server refused the credentials, or none were given."""


class PermissionDeniedError(MlopsError):
    """The server knows the user, who may not do this."""

    exit_code = 4

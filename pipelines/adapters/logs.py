"""Where log records go: one line per event on the terminal, everything with tracebacks in a file.

A failure is one ``error:`` line on the terminal. The lines Prefect's flow and task engines log
about it keep their message there but lose their traceback, which the project's log file
(``.mlops/logs/mlops.log``, every command's records, a few rotated files) keeps. When debugging,
the terminal shows tracebacks as well.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import logging.handlers
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType

from pipelines.config.errors import MlopsError

LOG_FILE = Path("logs") / "mlops.log"
"""Inside the project's state folder."""
MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 5
FILE_FORMAT = "%(asctime)s | %(levelname)-7s | %(process)d | %(origin)s - %(message)s"
COMMAND_LOGGER = "mlops.command"
# Loggers whose records never reach the root logger's handlers: each gets the file's handler too.
SEPARATE_LOGGERS = ("prefect.extra", "prefect._internal", "mlflow")
# Importing these (re)configures logging: Prefect's configuration replaces the root logger's
# handlers, MLflow replaces its loggers' handlers. What is set up here is set up again after them.
RECONFIGURE_LOGGING = ("prefect.main", "mlflow")


class _ProjectLogFile(logging.handlers.RotatingFileHandler):
    """The project's log file, shared by every command's process.

    The class name starts with "_" on purpose: Prefect leaves the root logger without its console
    handler when it finds a handler there whose class name does not (a user's own configuration).
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
        self.setFormatter(_FileFormatter(FILE_FORMAT))


class _TerminalWarnings(logging.StreamHandler):
    """What Python prints of warnings when no handler is set up (the root logger gets the file's
    handler, which would otherwise silence them on the terminal); "_" for the reason above."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setLevel(logging.WARNING)


class _FileFormatter(logging.Formatter):
    """Names the flow or task run a record comes from, as Prefect's console does."""

    def format(self, record: logging.LogRecord) -> str:
        record.origin = _origin(record)
        return super().format(record)


def _origin(record: logging.LogRecord) -> str:
    task_run = getattr(record, "task_run_name", None)
    if task_run:
        return f"task run {task_run!r}"
    flow_run = getattr(record, "flow_run_name", None)
    return f"flow run {flow_run!r}" if flow_run else record.name


class _WithoutTraceback(logging.Formatter):
    """Formats a record as ``inner`` does, leaving out its traceback and stack.

    A copy is formatted: the record itself goes on to the log file's handler with its traceback.
    """

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        bare = copy.copy(record)
        bare.exc_info, bare.exc_text, bare.stack_info = None, None, None
        return self.inner.format(bare)


class _Recording:
    handler: _ProjectLogFile | None = None
    debug: bool = False


_recording = _Recording()


def record_to(path: Path, debug: bool, argv: Sequence[str]) -> Path | None:
    """From now on every record also goes to the log file ``path``, after a line naming the command.

    The terminal shows no tracebacks unless ``debug``. None when the file cannot be written: the
    command goes on without it.
    """
    if _recording.handler is not None and Path(_recording.handler.baseFilename) == path.absolute():
        return path
    try:
        handler = _ProjectLogFile(path)
    except OSError:
        return None
    _recording.handler, _recording.debug = handler, debug
    command = logging.getLogger(COMMAND_LOGGER)
    command.handlers, command.propagate = [handler], False
    command.setLevel(logging.INFO)
    _apply()
    for name in RECONFIGURE_LOGGING:
        _after_import(name, _apply)
    command.info(shlex.join([Path(argv[0]).name if argv else "mlops", *argv[1:]]))
    return path


def log_file() -> Path | None:
    """The log file this process writes to, if any."""
    return Path(_recording.handler.baseFilename) if _recording.handler else None


def record_failure(error: BaseException) -> Path | None:
    """``error`` and its traceback in the log file; returns the file, None when there is none."""
    if _recording.handler is None:
        return None
    reason = str(error) if isinstance(error, MlopsError) else f"unexpected {type(error).__name__}: {error}"
    logging.getLogger(COMMAND_LOGGER).error(f"error: {reason}", exc_info=error)
    return log_file()


def hide_tracebacks_on_terminal() -> None:
    """Every handler that writes to a stream shows its records without traceback from now on."""
    for handler in _terminal_handlers():
        if not isinstance(handler.formatter, _WithoutTraceback):
            handler.setFormatter(_WithoutTraceback(handler.formatter or logging.Formatter()))


def _apply() -> None:
    handler = _recording.handler
    if handler is None:
        return
    root = logging.getLogger()
    if not any(_writes_to_terminal(h) for h in root.handlers):
        root.addHandler(_TerminalWarnings())
    for logger in (root, *map(logging.getLogger, SEPARATE_LOGGERS)):
        if handler not in logger.handlers:
            logger.addHandler(handler)
    if not _recording.debug:
        hide_tracebacks_on_terminal()


def _terminal_handlers() -> Iterator[logging.StreamHandler]:
    loggers = [logging.getLogger(), *(logger for logger in list(logging.Logger.manager.loggerDict.values())
                                      if isinstance(logger, logging.Logger))]
    for logger in loggers:
        yield from (h for h in logger.handlers if _writes_to_terminal(h))


def _writes_to_terminal(handler: logging.Handler) -> bool:
    return isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)


def _after_import(name: str, then: Callable[[], None]) -> None:
    """Call ``then`` once module ``name`` is imported, unless it is already."""
    if name not in sys.modules and not any(isinstance(f, _AfterImport) and f.name == name
                                           for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(name, then))


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds module ``name`` as the other finders do, and calls ``then`` when it has loaded."""

    def __init__(self, name: str, then: Callable[[], None]) -> None:
        self.name, self.then = name, then

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        load, then = spec.loader.exec_module, self.then

        def exec_module(module: ModuleType) -> None:
            load(module)
            then()

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec

"""Named points where a command can be made to crash or stall on purpose, to test crash safety.

``MLOPS_FAILPOINTS="data.add.appended=kill,cycle.training=sleep:30"`` makes the command kill
itself with SIGKILL, sleep, or raise at those points. With ``MLOPS_FAILPOINT_MARKERS`` set to a
folder, each point reached with an action first creates a file of its name there, so a test can
wait for a stage before it signals the process. Unset, a failpoint costs one dictionary lookup.
"""

from __future__ import annotations

import functools
import os
import signal
import time
from pathlib import Path

ENVIRONMENT_VARIABLE = "MLOPS_FAILPOINTS"
MARKERS_VARIABLE = "MLOPS_FAILPOINT_MARKERS"


class FailpointError(RuntimeError):
    """Raised at a failpoint whose action is ``raise``."""


@functools.lru_cache(maxsize=4)
def _actions(spec: str) -> dict[str, str]:
    actions = {}
    for item in spec.split(","):
        name, _, action = item.strip().partition("=")
        if name:
            actions[name] = action or "kill"
    return actions


def hit(name: str) -> None:
    """Carry out the action the environment names for failpoint ``name``, if any."""
    spec = os.environ.get(ENVIRONMENT_VARIABLE)
    if not spec:
        return
    action = _actions(spec).get(name)
    if action is None:
        return
    markers = os.environ.get(MARKERS_VARIABLE)
    if markers:
        Path(markers).mkdir(parents=True, exist_ok=True)
        (Path(markers) / name).touch()
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action.startswith("sleep:"):
        time.sleep(float(action.removeprefix("sleep:")))
    elif action == "raise":
        raise FailpointError(f"failpoint {name}")
    else:
        raise FailpointError(f"{ENVIRONMENT_VARIABLE}: unknown action {action!r} for {name} "
                             "(kill, sleep:SECONDS or raise)")

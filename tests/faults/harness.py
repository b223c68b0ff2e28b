"""Real `mlops` processes for fault-injection tests: started, stalled or killed at named failpoints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MLOPS = str(Path(sys.executable).parent / "mlops")


def environment(failpoints: str = "", markers: Path | None = None, **extra: str) -> dict[str, str]:
    """A user's environment: no tracking URI or Prefect API left over from other tests."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "MLOPS_FAILPOINTS")}
    if failpoints:
        env["MLOPS_FAILPOINTS"] = failpoints
    if markers is not None:
        env["MLOPS_FAILPOINT_MARKERS"] = str(markers)
    return env | extra


def run(root: Path, *args: str, failpoints: str = "", timeout: float = 300,
        **extra: str) -> subprocess.CompletedProcess[str]:
    """``mlops *args`` in ``root`` to its end (or its own kill at a failpoint).

    Output goes through files, not pipes: a process the command left behind holding its output
    must not make the test wait for ever (the tests look for such processes themselves).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen([MLOPS, *args], cwd=root, env=environment(failpoints, **extra),
                                   stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(process.args, code, out.read().decode(errors="replace"),
                                           err.read().decode(errors="replace"))


def start(root: Path, *args: str, failpoints: str = "", markers: Path | None = None,
          **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([MLOPS, *args], cwd=root, env=environment(failpoints, markers, **extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_marker(markers: Path, name: str, process: subprocess.Popen[str], timeout: float = 240) -> None:
    """Block until the process reaches failpoint ``name``; fail if it ends first."""
    deadline = time.monotonic() + timeout
    while not (markers / name).exists():
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"mlops ended ({process.returncode}) before {name}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"mlops did not reach {name} within {timeout} s")
        time.sleep(0.1)


def processes_in(root: Path) -> list[str]:
    """Command lines of live processes whose working directory is ``root`` (what a command left)."""
    found = []
    target = str(root.resolve())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if os.readlink(entry / "cwd") != target:
                continue
            status = (entry / "stat").read_text().split()
            if status[2] == "Z":
                continue
            found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return found


def wait_until_no_processes(root: Path, timeout: float = 10) -> list[str]:
    """What still runs in ``root`` after ``timeout`` seconds (an empty list once all are gone)."""
    deadline = time.monotonic() + timeout
    while (left := processes_in(root)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def kill_leftovers(root: Path) -> None:
    """Clean up after a failing test, so one failure does not leave servers behind."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd") == str(root.resolve()):
                    os.kill(int(entry.name), signal.SIGKILL)
            except OSError:
                continue

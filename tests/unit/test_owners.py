"""Whether the process that wrote a record still exists."""

from __future__ import annotations

import subprocess
import sys

from pipelines.adapters import owners


def test_this_process_is_alive():
    assert not owners.is_dead(owners.tags())


def test_an_ended_process_is_dead():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    recorded = {owners.TAG_HOST: owners.tags()[owners.TAG_HOST], owners.TAG_PID: str(child.pid),
                owners.TAG_STARTED: owners.start_time(child.pid) or ""}
    child.wait()
    assert owners.is_dead(recorded)


def test_a_reused_pid_is_not_the_owner():
    recorded = {**owners.tags(), owners.TAG_STARTED: "1"}
    assert owners.is_dead(recorded)


def test_another_machine_cannot_be_checked_and_counts_as_alive():
    assert not owners.is_dead({**owners.tags(), owners.TAG_HOST: "elsewhere.example"})


def test_a_record_without_owner_has_no_writer_to_wait_for():
    assert owners.is_dead({})

"""Long steps show they are alive: a line with the elapsed time while they run, and their duration after."""

from __future__ import annotations

import logging
import re
import time

import pytest

from neurolearn_cli.heartbeat import heartbeat


def test_a_long_step_ticks_and_reports_its_duration(caplog):
    log = logging.getLogger("heartbeat-test")
    with caplog.at_level(logging.INFO, logger="heartbeat-test"), heartbeat(log, "sub-01: smri", interval_s=0.05):
        time.sleep(0.3)
    messages = [record.getMessage() for record in caplog.records]
    ticks = [m for m in messages if m.startswith("sub-01: smri: running for ")]
    assert len(ticks) >= 2
    assert re.fullmatch(r"sub-01: smri took \d+ s", messages[-1])


def test_only_the_innermost_step_ticks(caplog):
    log = logging.getLogger("heartbeat-test")
    with caplog.at_level(logging.INFO, logger="heartbeat-test"), heartbeat(log, "outer", interval_s=0.05):
        with heartbeat(log, "inner", interval_s=0.05):
            time.sleep(0.3)
        while_inner = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("inner: running") for m in while_inner)
    assert not any(m.startswith("outer: running") for m in while_inner[:-1])  # at most one tick after inner ended


def test_a_failed_step_reports_no_duration(caplog):
    log = logging.getLogger("heartbeat-test")
    with caplog.at_level(logging.INFO, logger="heartbeat-test"), pytest.raises(RuntimeError):
        with heartbeat(log, "sub-01: fmri", interval_s=10):
            raise RuntimeError("registration diverged")
    assert not any("took" in record.getMessage() for record in caplog.records)

"""The fmri workflow's own checks, before any work."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from neurolearn_cli.dataset.query import plan_dataset
from neurolearn_cli.errors import InputError
from neurolearn_cli.fmri.workflow import run_participant


def test_dummy_scans_beyond_the_run_name_the_run(make_bids, tmp_path):
    participant = plan_dataset(make_bids(("01",))).participants[0]
    context = SimpleNamespace(config=SimpleNamespace(dummy_scans=10), writer=None, log=logging.getLogger("test"))
    with pytest.raises(InputError, match="sub-01_task-rest_bold.nii.gz: --dummy-scans 10 leaves none of its 10"):
        run_participant(participant, context)

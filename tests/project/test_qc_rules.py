"""The project's QC exclusion rules: which done participants an IQM rule leaves out of the pool, and bad rules."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from neurolearn_cli.errors import SpecError
from neurolearn_cli.project.model import QCRule
from neurolearn_cli.project.pool import qc_exclusions


def _qc() -> pd.DataFrame:
    return pd.DataFrame({"status": ["done", "done", "done", "failed", "done"],
                         "cjv": [0.45, 0.72, None, 0.90, 0.50], "snr_total": [12.0, 15.0, 9.0, 3.0, 4.0]},
                        index=pd.Index(["sub-a", "sub-b", "sub-c", "sub-d", "sub-e"], name="participant_id"))


def test_a_rule_leaves_out_done_participants_beyond_its_bound_and_names_itself():
    rules = [QCRule(iqm="cjv", above=0.6), QCRule(iqm="snr_total", below=5.0)]
    excluded = qc_exclusions(_qc(), rules, Path("project.yaml"))
    # sub-c's missing cjv keeps it; sub-d failed at its site (already out, not a rule's doing)
    assert excluded.to_dict() == {"sub-b": "cjv above 0.6", "sub-e": "snr_total below 5"}
    assert qc_exclusions(_qc(), [], Path("project.yaml")).empty


def test_a_rule_on_an_unknown_iqm_names_the_project_field():
    with pytest.raises(SpecError, match=r"qc_exclude\.0\.iqm"):
        qc_exclusions(_qc(), [QCRule(iqm="efc", above=0.5)], Path("project.yaml"))


def test_a_rule_needs_a_bound():
    with pytest.raises(ValidationError, match="needs 'above' or 'below'"):
        QCRule(iqm="cjv")
    assert str(QCRule(iqm="cjv", above=0.6, below=0.2)) == "cjv above 0.6 or below 0.2"

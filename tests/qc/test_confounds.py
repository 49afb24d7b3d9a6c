"""Confound correlations: selection, ordering, the figure and its place in the report."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest

from neurolearn_cli.fmri.motion import MOTION_COLUMNS
from neurolearn_cli.qc import confounds, figures, report
from neurolearn_cli.qc.pipeline import confound_figures
from tests.qc.conftest import EVIL

N_VOLUMES = 40
DUMMIES = 3


def confounds_table(seed: int = 0) -> pd.DataFrame:
    """An fMRIPrep-like table: WM tracks the global signal, CSF anti-tracks it, motion is noise.

    The first ``DUMMIES`` rows hold a huge transient shared by noise columns, which
    would dominate their correlations if the non-steady-state rows were kept.
    """
    rng = np.random.default_rng(seed)
    gs = rng.normal(size=N_VOLUMES)
    table = pd.DataFrame(
        {
            "global_signal": gs,
            "white_matter": gs + 0.3 * rng.normal(size=N_VOLUMES),
            "csf": -gs + 0.8 * rng.normal(size=N_VOLUMES),
            **{name: 0.01 * rng.normal(size=N_VOLUMES) for name in MOTION_COLUMNS},
            "framewise_displacement": np.r_[np.nan, np.abs(rng.normal(0.1, 0.05, N_VOLUMES - 1))],
            "std_dvars": np.r_[np.nan, gs[1:]],
            "a_comp_cor_00": gs,
            "cosine00": np.zeros(N_VOLUMES),
        }
    )
    table["global_signal_derivative1"] = table["global_signal"].diff()
    table.loc[: DUMMIES - 1, ["global_signal", "trans_x"]] = 1e3
    for k in range(DUMMIES):
        table[f"non_steady_state_outlier{k:02d}"] = (np.arange(N_VOLUMES) == k).astype(float)
    return table


def test_selection_and_order_follow_the_global_signal() -> None:
    table = confounds_table()
    matrix = confounds.confound_correlations(table, skip=DUMMIES)
    names = list(matrix.columns)
    assert names[:3] == ["global_signal", "white_matter", "csf"]
    excluded = ("a_comp_cor_00", "std_dvars", "cosine00", "non_steady_state_outlier00")
    assert not set(excluded) & set(names)  # by prefix, and the constant cosine
    assert list(matrix.index) == names and np.allclose(matrix.to_numpy(), matrix.to_numpy().T)
    steady = table.iloc[DUMMIES:]
    expected = np.corrcoef(steady["global_signal"], steady["csf"])[0, 1]
    assert matrix.loc["csf", "global_signal"] == pytest.approx(expected)
    # the derivative's undefined first row is skipped pairwise
    pair = steady[["global_signal", "global_signal_derivative1"]].dropna()
    assert matrix.loc["global_signal", "global_signal_derivative1"] == pytest.approx(
        np.corrcoef(pair.to_numpy().T)[0, 1]
    )
    strength = matrix["global_signal"].abs().to_numpy()
    assert np.all(np.diff(strength) <= 1e-12)
    assert confounds.top_correlates(matrix, n=2) == [
        ("white_matter", pytest.approx(matrix.loc["white_matter", "global_signal"])),
        ("csf", pytest.approx(expected)),
    ]
    assert "global_signal_derivative1" in names
    assert "global_signal_derivative1" not in dict(confounds.top_correlates(matrix, n=len(names)))


def test_non_steady_rows_are_skipped_and_size_is_capped() -> None:
    table = confounds_table()
    with_transient = confounds.confound_correlations(table, skip=0)
    assert with_transient.loc["trans_x", "global_signal"] > 0.9  # the shared transient
    assert (
        abs(confounds.confound_correlations(table, skip=DUMMIES).loc["trans_x", "global_signal"])
        < 0.5
    )
    assert confounds.confound_correlations(table, max_dim=4).shape == (4, 4)
    assert confounds.nonsteady_count(table) == DUMMIES


def test_missing_or_constant_reference_is_refused() -> None:
    table = confounds_table()
    with pytest.raises(ValueError, match="global_signal"):
        confounds.confound_correlations(table.drop(columns="global_signal"))
    table["global_signal"] = 5.0
    with pytest.raises(ValueError, match="global_signal"):
        confounds.confound_correlations(table)


def test_figure_draws_names_from_the_data_as_plain_text() -> None:
    table = confounds_table().rename(columns={"white_matter": r"$\frac$ <b>"})
    matrix = confounds.confound_correlations(table, skip=DUMMIES)
    png = figures.confounds_correlation(matrix, "global_signal")  # mathtext would raise
    assert png.startswith(b"\x89PNG") and len(png) < 300 * 1024


def test_report_shows_the_figure_with_escaped_caption() -> None:
    table = confounds_table().rename(columns={"white_matter": EVIL})
    made = confound_figures(table, repetition_time=2.0, dummies=DUMMIES, fd_threshold=0.5)
    assert [f.title for f in made] == ["Head motion", "Confound correlations"]
    steady = table.iloc[DUMMIES:]
    r = np.corrcoef(steady[EVIL], steady["global_signal"])[0, 1]
    assert f"strongest: {EVIL} (r = {r:.2f})" in made[1].caption
    page = report.render_participant_report(
        report.ParticipantReport(
            participant="01",
            func=(report.ImageQC(bids_name="sub-01_task-rest_bold", figures=made),),
        )
    )
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; (r = " in page
    uris = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="Confound correlations"', page)
    assert len(uris) == 1 and base64.b64decode(uris[0]) == made[1].data


def test_no_correlation_figure_without_a_global_signal() -> None:
    table = confounds_table().drop(columns="global_signal")
    assert [f.title for f in confound_figures(table, 2.0, DUMMIES, fd_threshold=0.5)] == ["Head motion"]

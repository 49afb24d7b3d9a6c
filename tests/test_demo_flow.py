"""The flow of ``make demo`` at small size, checked as a newcomer would meet it.

Six simulated participants (the first with a short BOLD run) go through the
participant level, then the group level with the analysis spec the example
dataset ships in ``code/`` (folds and permutations shrunk for six people).
The checks are those a first-time user would make: ``neurolearn verify``
passes, every report says what was done for each stage that ran, no IQM holds
a placeholder number, the group reports flag nothing on a count that differs
by one, and the three kinds of report render in Chromium without errors.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from neurolearn_cli.example_data.metadata import ANALYSIS_SPEC
from neurolearn_cli.qc.group import flag_outliers, iqm_columns
from neurolearn_cli.qc.iqm_catalog import describe
from neurolearn_cli.qc.workflow import iqm_records
from neurolearn_cli.verify import verify

pytestmark = pytest.mark.slow

PARTICIPANTS = 6
ANALYSIS = "patients_vs_controls"
SECTIONS = {
    "smri": "Anatomical data preprocessing (smri)",
    "fmri": "Functional data preprocessing (fmri)",
    "qc": "Quality control (qc)",
    "mvpa": f"Pattern analysis {ANALYSIS} (mvpa)",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[int]]:
    """The example dataset processed at participant and group level; the BIDS root, outputs and exit codes."""
    from neurolearn_cli.cli.app import main
    from neurolearn_cli.example_data import write_example_dataset

    root = tmp_path_factory.mktemp("demo")
    bids = write_example_dataset(root / "bids", participants=PARTICIPANTS, seed=0, volumes=30, bold_participants=1)
    out = root / "derivatives"
    commands = [
        [str(bids), str(out), "participant", "--nprocs", "2", "--omp-nthreads", "1"],
        [str(bids), str(out), "group", "--spec", str(bids / ANALYSIS_SPEC), "--cv", "3", "--inner-cv", "2",
         "--permutations", "10"],
    ]
    codes = []
    for argv in commands:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        codes.append(exit_info.value.code)
    return bids, out, codes


def test_both_levels_succeed_and_verify_passes(demo: tuple[Path, Path, list[int]]) -> None:
    _, out, codes = demo
    assert codes == [0, 0]
    report = verify(out)
    assert report.ok, report
    assert (out / "mvpa" / ANALYSIS / "results.json").is_file()


def _headings(html: str) -> set[str]:
    return {re.sub(r"\s+", " ", text).strip() for text in re.findall(r"<h[2-4][^>]*>(.*?)</h[2-4]>", html, re.S)}


def test_reports_say_what_each_stage_that_ran_did(demo: tuple[Path, Path, list[int]]) -> None:
    _, out, _ = demo
    with_bold = _headings((out / "sub-01.html").read_text(encoding="utf-8"))
    assert {SECTIONS["smri"], SECTIONS["fmri"], SECTIONS["qc"]} <= with_bold
    t1w_only = _headings((out / "sub-02.html").read_text(encoding="utf-8"))
    assert {SECTIONS["smri"], SECTIONS["qc"]} <= t1w_only and SECTIONS["fmri"] not in t1w_only
    citation = (out / "logs" / "CITATION.md").read_text(encoding="utf-8")
    for title in SECTIONS.values():
        assert title in citation, title
    assert "no fieldmap" in citation  # a skipped step says why
    mvpa_report = (out / "mvpa" / ANALYSIS / "report.html").read_text(encoding="utf-8")
    assert "intracranial volume" in mvpa_report and "siteA" in mvpa_report and "siteB" in mvpa_report


def test_no_iqm_holds_a_placeholder(demo: tuple[Path, Path, list[int]]) -> None:
    _, out, _ = demo
    records = iqm_records(out, "T1w", "anat") + iqm_records(out, "bold", "func")
    assert len(records) == PARTICIPANTS + 1
    for iqms in records:
        name, missing = iqms["bids_name"], iqms.get("missing", {})
        for measure, value in iqms.items():
            if value is None:
                assert missing.get(measure), f"{name}: {measure} is null without a reason"
            elif isinstance(value, float):
                assert math.isfinite(value) and value != -1, f"{name}: {measure} = {value}"
        if name.endswith("_T1w"):
            assert isinstance(iqms["fber"], float) and iqms["fber"] > 1, name


def test_group_reports_flag_no_count_that_differs_by_one(demo: tuple[Path, Path, list[int]]) -> None:
    _, out, _ = demo
    for modality in ("T1w", "bold"):
        table = pd.read_csv(out / f"group_{modality}.tsv", sep="\t")
        counts = [c for c in iqm_columns(table) if describe(c).step is not None]
        assert counts, modality
        for column in counts:  # everyone at the median count, one image a single count above
            table[column] = table[column].median().round()
            table.loc[0, column] += describe(column).step
        assert not set(flag_outliers(table)["iqm"]) & set(counts), modality


@pytest.mark.parametrize("page", ["sub-01.html", "group_T1w.html", f"mvpa/{ANALYSIS}/report.html"])
def test_reports_render_at_full_height_without_errors(demo: tuple[Path, Path, list[int]], page: str,
                                                      chromium_status: Callable[..., dict]) -> None:
    _, out, _ = demo
    window = 20_000
    status = chromium_status((out / page).read_text(encoding="utf-8"), Path(page).name, height=window)
    assert status["errors"] == [] and status["broken"] == []
    assert status["figures"] >= 1
    assert 0 < status["height"] <= window  # the screenshot holds the whole page

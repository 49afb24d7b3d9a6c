"""The IQM catalog, IQM JSONs without placeholder numbers, and the participant report's IQM tables."""

from __future__ import annotations

import json
import re

import numpy as np
import torch

from neurolearn_cli.qc import anatomical, functional, masks, report
from neurolearn_cli.qc.iqm_catalog import CATALOG, GROUPS, describe, format_value, iqm_groups
from neurolearn_cli.qc.measures import MISSING_KEY, Missing
from neurolearn_cli.qc.pipeline import iqm_record
from tests.qc.conftest import EVIL, HeadPhantom, probabilities_from_dseg


def stripped_t1w_iqms(p: HeadPhantom) -> dict[str, object]:
    """IQMs of the phantom skull-stripped (no background signal, so no noise reference)."""
    stripped = p.t1w * p.brain
    air = masks.air_mask(stripped, p.brain, p.brain, p.affine)  # the zero background is a frame: empty
    artifacts = masks.artifact_mask(stripped, air, p.brain, p.spacing)
    return dict(
        anatomical.anatomical_iqms(
            stripped, p.spacing, p.brain, probabilities_from_dseg(p.dseg), p.brain, air, artifacts
        )
    )


def bold_iqms_without_motion() -> dict[str, object]:
    rng = np.random.default_rng(0)
    bold = torch.from_numpy(rng.normal(1000.0, 10.0, (9, 10, 11, 12)).astype(np.float32))
    mask = torch.zeros(9, 10, 11, dtype=torch.bool)
    mask[2:7, 2:8, 2:9] = True
    return dict(functional.functional_iqms(bold, mask, (3.0, 3.0, 3.3), 2.0, np.array([np.nan])))


def test_every_computed_iqm_is_in_the_catalog(head_phantom: HeadPhantom) -> None:
    names = set(stripped_t1w_iqms(head_phantom)) | set(bold_iqms_without_motion())
    unknown = {name for name in names if name not in CATALOG}
    assert not unknown
    for name in names:
        info = describe(name)
        assert info.group in GROUPS[:-1] and info.meaning.endswith(".")
        assert info.url("T1w") is None or info.url("T1w").startswith("https://mriqc.readthedocs.io/")  # type: ignore[union-attr]
    assert describe("not_an_iqm").group == "Other"
    assert describe("fd_num").step == 1.0 and describe("fd_perc").per_volume


def test_iqm_jsons_hold_no_placeholder_number(head_phantom: HeadPhantom) -> None:
    for iqms, name in ((stripped_t1w_iqms(head_phantom), "sub-01_T1w"), (bold_iqms_without_motion(), "sub-01_bold")):
        record = iqm_record(iqms, name)  # type: ignore[arg-type]
        text = json.dumps(record, allow_nan=False)
        missing = record[MISSING_KEY]
        assert isinstance(missing, dict) and missing
        for key, reason in missing.items():
            assert record[key] is None and isinstance(reason, str) and reason
        numbers = [v for k, v in record.items() if isinstance(v, (int, float)) and k not in ("dummy_trs",)]
        assert -1 not in numbers and "-1.0" not in re.findall(r"-?\d+\.?\d*", text)
    t1w = iqm_record(stripped_t1w_iqms(head_phantom), "sub-01_T1w")  # type: ignore[arg-type]
    assert t1w["fber"] is None and "background" in t1w[MISSING_KEY]["fber"]  # type: ignore[index]
    bold = iqm_record(bold_iqms_without_motion(), "sub-01_bold")  # type: ignore[arg-type]
    assert {"fd_mean", "fd_num", "fd_perc"} <= set(bold[MISSING_KEY])  # type: ignore[arg-type]


def test_a_clean_record_has_no_missing_key() -> None:
    assert iqm_record({"cjv": 0.5, "size_x": 7}, "sub-01_T1w") == {"cjv": 0.5, "size_x": 7, "bids_name": "sub-01_T1w"}
    assert iqm_record({"fwhm_x": float("nan")}, "sub-01_T1w")[MISSING_KEY] == {"fwhm_x": "not a finite number"}


def test_values_are_formatted_by_kind() -> None:
    assert format_value(12.0, describe("fd_num")) == "12"
    assert format_value(0.123456, describe("cjv")) == "0.1235"
    assert format_value(Missing("why")) == "n/a" and format_value(None) == "n/a"
    assert format_value(float("inf")) == "n/a"


def test_groups_follow_the_catalog_order_and_carry_reasons() -> None:
    groups = iqm_groups(
        {"summary_wm_mean": 700.0, "fber": None, "cjv": 0.4, "qi_1": 0.0, "efc": Missing("no signal")},
        "T1w",
        {"fber": "no background voxels"},
    )
    assert [g.title for g in groups] == ["Noise", "Information theory", "Artifacts", "Intensity summaries"]
    rows = {row.info.name: row for group in groups for row in group.rows}
    assert (rows["fber"].text, rows["fber"].reason) == ("n/a", "no background voxels")
    assert rows["efc"].reason == "no signal" and rows["qi_1"].text == "0" and rows["qi_1"].reason is None
    assert rows["cjv"].url == "https://mriqc.readthedocs.io/en/latest/iqms/t1w.html#iqms-cjv"


def test_participant_report_shows_grouped_iqms_with_reasons_on_hover() -> None:
    anat = report.ImageQC(
        bids_name="sub-01_T1w",
        iqms={"cjv": 0.41, "fber": Missing(f"no background voxels {EVIL}"), "size_x": 40, "summary_bg_n": 0.0},
    )
    func = report.ImageQC(bids_name="sub-01_task-rest_bold", iqms={"tsnr": 55.0, "fd_perc": 1.7})
    page = report.render_participant_report(report.ParticipantReport(participant="01", anat=(anat,), func=(func,)))
    assert '<span class="na" title="no background voxels &lt;script&gt;alert(1)&lt;/script&gt;">n/a</span>' in page
    assert "<summary>Noise (1)</summary>" in page and "<summary>Motion (1)</summary>" in page
    assert 'href="https://mriqc.readthedocs.io/en/latest/iqms/bold.html#iqms-tsnr"' in page
    assert "<td>%</td>" in page and "Percentage of volumes" in page
    assert ">-1<" not in page

"""Group tables, outlier rules whose scale cannot collapse, and the group report's points and rules."""

from __future__ import annotations

import re

import numpy as np
import pytest

from neurolearn_cli.qc import group
from neurolearn_cli.qc.group_report import render_group_report
from neurolearn_cli.qc.measures import MISSING_KEY
from tests.qc.conftest import EVIL


def bold_records(fd_num: list[int], size_t: list[int], dummies: int = 2) -> list[dict[str, object]]:
    """BOLD IQM records whose fd_num/fd_perc follow MRIQC's definition (100 fd_num / steady volumes)."""
    return [
        {
            "bids_name": f"sub-{k:02d}_task-rest_bold",
            "fd_num": count,
            "fd_perc": 100.0 * count / (volumes - dummies),
            "size_t": volumes,
            "dummy_trs": dummies,
            "tsnr": 50.0 + k,
        }
        for k, (count, volumes) in enumerate(zip(fd_num, size_t, strict=True), start=1)
    ]


def test_group_table_orders_rows_and_columns() -> None:
    table = group.group_table(
        [{"bids_name": "sub-b_T1w", "snr": 2.0, "cjv": 1.0}, {"bids_name": "sub-a_T1w", "cjv": 3.0}]
    )
    assert list(table.columns) == ["bids_name", "participant_id", "cjv", "snr"]
    assert list(table["participant_id"]) == ["sub-a", "sub-b"]
    assert np.isnan(table.loc[0, "snr"])
    with pytest.raises(ValueError, match="bids_name"):
        group.group_table([{"cjv": 1.0}])


def test_missing_values_are_nan_and_their_reasons_kept_apart() -> None:
    records = [
        {"bids_name": "sub-01_T1w", "fber": None, "cjv": 0.4, MISSING_KEY: {"fber": "no background voxels"}},
        {"bids_name": "sub-02_T1w", "fber": 300.0, "cjv": 0.5},
    ]
    table = group.group_table(records)
    assert MISSING_KEY not in table.columns and np.isnan(table.loc[0, "fber"])
    assert group.missing_reasons(records) == {("sub-01_T1w", "fber"): "no background voxels"}


def test_flag_outliers_robust_z_and_tukey() -> None:
    values = [10.0, 10.5, 9.5, 10.2, 9.8, 10.1, 9.9, 30.0]
    table = group.group_table({"bids_name": f"sub-{k}_bold", "tsnr": v} for k, v in enumerate(values))
    flags = group.flag_outliers(table)
    assert list(flags["participant_id"]) == ["sub-7"]
    row = flags.iloc[0]
    median = np.median(values)
    mad = np.median(np.abs(np.asarray(values) - median))
    assert row["robust_z"] == pytest.approx(0.6745 * (30.0 - median) / mad, rel=1e-4)
    assert row["scale_rule"] == "MAD"
    assert bool(row["robust"]) and bool(row["tukey"])
    assert (row["low_fence"], row["high_fence"]) == pytest.approx(group.tukey_fences(np.asarray(values)))
    constant = group.group_table({"bids_name": f"sub-{k}_bold", "tsnr": 1.0} for k in range(5))
    assert group.flag_outliers(constant).empty


def test_values_one_count_apart_are_not_outliers() -> None:
    # the case: fd_perc 1.7 % against 3.5 % (one volume more above the threshold), runs of
    # slightly different lengths, so the MAD is tiny but not 0 and a plain robust z was -38
    table = group.group_table(bold_records([1, 1, 1, 1, 2, 1], [60, 59, 61, 60, 59, 60]))
    assert table["fd_perc"].round(1).tolist() == [1.7, 1.8, 1.7, 1.7, 3.5, 1.7]
    assert group.flag_outliers(table).empty
    low, high = group.tukey_fences(np.array([3.0, 3.0, 3.0, 4.0]), min_iqr=1.0)
    assert low <= 3.0 and high >= 4.0


def test_a_real_count_outlier_is_still_flagged_with_its_rule() -> None:
    table = group.group_table(bold_records([1, 1, 1, 1, 12, 1], [60, 59, 61, 60, 59, 60]))
    flags = group.flag_outliers(table).set_index("iqm")
    assert set(flags.index) == {"fd_num", "fd_perc"}
    assert flags.loc["fd_num", "scale_rule"] == "one count" and flags.loc["fd_num", "scale"] == 1.0
    assert flags.loc["fd_num", "robust_z"] == pytest.approx(11.0)
    assert flags.loc["fd_perc", "scale_rule"] == "one volume"
    assert flags.loc["fd_perc", "scale"] == pytest.approx(100.0 / 57.0)  # the shortest run's steady volumes


def test_scale_is_the_largest_of_mad_iqr_and_resolution() -> None:
    values = np.array([5.0, 5.0, 5.0, 5.0, 5.0, 6.0, 7.0, 8.0])
    spread = group.robust_scale(values, floor=0.05, floor_rule="1% of the median")
    q1, q3 = np.percentile(values, [25, 75])
    assert (spread.rule, spread.scale) == ("IQR / 1.349", pytest.approx((q3 - q1) / 1.349, rel=1e-4))
    flat = group.robust_scale(np.array([5.0, 5.0, 5.0, 5.0, 6.0]), floor=0.05, floor_rule="floor")
    assert (flat.rule, flat.scale) == ("floor", 0.05)


def test_a_tight_majority_does_not_make_the_rest_outliers() -> None:
    # two sites: three images within 0.5 % of each other and two at 60 %: the MAD (0.02) alone gave z = -26
    values = [1.534, 1.561, 2.600, 2.610, 2.620]
    table = group.group_table({"bids_name": f"sub-{k}_bold", "gcor": v} for k, v in enumerate(values))
    assert group.flag_outliers(table).empty
    summaries = group.group_table(
        {"bids_name": f"sub-{k}_bold", "summary_fg_mean": v} for k, v in enumerate([1.0, 1.0, 1.0, 1.0, 90.0])
    )
    assert group.flagged_columns(summaries) == [] and group.flag_outliers(summaries).empty


@pytest.fixture(scope="module")
def group_page() -> str:
    records = [
        {"bids_name": f"sub-{k:02d}_T1w", "cjv": 0.40 + 0.01 * k, "fber": 300.0 + k, "qi_1": 0.0}
        for k in range(1, 9)
    ]
    records[2]["cjv"] = 3.0
    records[4].update({"fber": None, MISSING_KEY: {"fber": f"no background voxels {EVIL}"}})
    records.append({"bids_name": "sub-09_T1w", "participant_id": EVIL, "cjv": 0.45, "fber": 301.0, "qi_1": 0.0})
    table = group.group_table(records)
    return render_group_report(table, "T1w", {"10": f"failed {EVIL}"}, group.missing_reasons(records))


def test_group_page_shows_every_point_with_its_image_on_hover(group_page: str) -> None:
    assert group_page.count("<svg") == 3  # one strip plot per IQM
    titles = re.findall(r"<circle[^>]*><title>([^<]*)</title>", group_page)
    assert len(titles) == 9 + 8 + 9  # one per image with a value: fber is missing for one image
    assert "sub-03_T1w: 3" in titles
    assert '<a href="sub-03.html">' in group_page
    assert 'class="flag-label"' in group_page and ">sub-03</text>" in group_page


def test_group_page_says_which_rule_flagged_what(group_page: str) -> None:
    row = re.search(r'<a href="sub-03.html">sub-03_T1w</a></td>(.*?)</tr>', group_page, re.S)
    assert row is not None
    assert "robust z = " in row.group(1) and "scale: MAD" in row.group(1)
    assert "Tukey: outside" in row.group(1)
    assert "qi_1" not in re.search(r'id="outliers"(.*?)id="plots"', group_page, re.S).group(1)  # type: ignore[union-attr]


def test_group_page_groups_links_and_missing_reasons(group_page: str) -> None:
    assert group_page.index(">Noise (") < group_page.index(">Information theory (") < group_page.index(">Artifacts (")
    assert 'href="https://mriqc.readthedocs.io/en/latest/iqms/t1w.html#iqms-fber"' in group_page
    assert f'title="no background voxels {EVIL}"'.replace("<", "&lt;").replace(">", "&gt;") in group_page
    assert EVIL not in group_page and "<script" not in group_page
    assert not re.search(r'src="(https?:)?//', group_page) and "<link" not in group_page


def test_too_few_images_are_not_flagged() -> None:
    values = [2.60, 2.62, 2.64, 2.83]  # four runs: Tukey's quartiles of four values flag the last
    table = group.group_table({"bids_name": f"sub-{k}_bold", "fwhm_avg": v} for k, v in enumerate(values))
    assert len(values) < group.MIN_IMAGES_TO_FLAG and group.flag_outliers(table).empty

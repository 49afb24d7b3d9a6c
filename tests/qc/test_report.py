"""HTML reports: autoescaping, self-containment, size; group tables and outlier flags."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from neurolearn_cli.qc import figures, group, report
from tests.qc.conftest import EVIL


def test_data_strings_are_escaped(sample_reports: dict[str, str]) -> None:
    for page in sample_reports.values():
        assert EVIL not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "<script" not in page
    # the metadata JSON and the participant label are both shown, escaped
    assert "sub-&lt;script&gt;" in sample_reports["participant"]
    assert "&#34;Manufacturer&#34;: &#34;&lt;script&gt;" in sample_reports["participant"]


def test_pages_are_self_contained_and_small(sample_reports: dict[str, str]) -> None:
    for page in sample_reports.values():
        assert len(page.encode("utf-8")) < 5 * 1024 * 1024
        sources = re.findall(r'<img src="([^"]*)"', page)
        assert sources and all(src.startswith("data:image/png;base64,") for src in sources)
        for source in sources:  # each figure is a small PNG
            png = base64.b64decode(source.split(",", 1)[1])
            assert png.startswith(b"\x89PNG") and len(png) < 300 * 1024
        assert not re.search(r'(href|src)="(https?:)?//', page)
        assert "<link" not in page


def test_group_page_links_outliers_and_lists_failures(sample_reports: dict[str, str]) -> None:
    page = sample_reports["group"]
    assert '<a href="sub-04.html">sub-04_T1w</a>' in page
    assert 'href="javascript' not in page  # an invalid participant id gets no link
    assert "segmentation failed &lt;script&gt;" in page
    assert page.count("<img ") == 3  # one strip/box plot per IQM


def test_participant_page_sections(sample_reports: dict[str, str]) -> None:
    page = sample_reports["participant"]
    for anchor in ('id="anat"', 'id="func"', 'id="methods"', 'id="errors"'):
        assert anchor in page
    assert "Esteban O" in page and "fmap: &lt;script&gt;" in page
    assert page.count("<img ") == 4


def test_group_table_orders_rows_and_columns() -> None:
    table = group.group_table(
        [{"bids_name": "sub-b_T1w", "snr": 2.0, "cjv": 1.0}, {"bids_name": "sub-a_T1w", "cjv": 3.0}]
    )
    assert list(table.columns) == ["bids_name", "participant_id", "cjv", "snr"]
    assert list(table["participant_id"]) == ["sub-a", "sub-b"]
    assert np.isnan(table.loc[0, "snr"])
    with pytest.raises(ValueError, match="bids_name"):
        group.group_table([{"cjv": 1.0}])


def test_flag_outliers_robust_z_and_tukey() -> None:
    values = [10.0, 10.5, 9.5, 10.2, 9.8, 10.1, 9.9, 30.0]
    table = group.group_table(
        {"bids_name": f"sub-{k}_bold", "tsnr": v} for k, v in enumerate(values)
    )
    flags = group.flag_outliers(table)
    assert list(flags["participant_id"]) == ["sub-7"]
    row = flags.iloc[0]
    median = np.median(values)
    mad = np.median(np.abs(np.asarray(values) - median))
    assert row["robust_z"] == pytest.approx(0.6745 * (30.0 - median) / mad)
    assert bool(row["robust"]) and bool(row["tukey"])
    assert (row["low_fence"], row["high_fence"]) == pytest.approx(
        figures.tukey_fences(np.asarray(values))
    )
    constant = group.group_table({"bids_name": f"sub-{k}_bold", "tsnr": 1.0} for k in range(5))
    assert group.flag_outliers(constant).empty


def test_methods_text_names_versions_and_modalities() -> None:
    versions = report.dependency_versions(("numpy", "no-such-package-xyz"))
    assert versions["no-such-package-xyz"] == "unknown"
    text = report.methods_text(["bold"], versions, fd_threshold=0.3)
    assert f"numpy {versions['numpy']}" in text and "0.3 mm" in text
    assert "T1w image" not in text and "References\n[1] Esteban" in text

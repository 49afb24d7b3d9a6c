"""HTML reports: autoescaping, self-containment, size, links (group rules: test_group.py)."""

from __future__ import annotations

import base64
import re

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
        assert all(src.startswith("data:image/png;base64,") for src in sources)
        for source in sources:  # each figure is a small PNG
            png = base64.b64decode(source.split(",", 1)[1])
            assert png.startswith(b"\x89PNG") and len(png) < 300 * 1024
        assert not re.search(r'src="(https?:)?//', page)  # nothing loaded from elsewhere
        # the only links out are to MRIQC's definitions of the IQMs
        assert set(re.findall(r'href="((?:https?:)?//[^/"]*)', page)) <= {"https://mriqc.readthedocs.io"}
        assert "<link" not in page


def test_group_page_links_outliers_and_lists_failures(sample_reports: dict[str, str]) -> None:
    page = sample_reports["group"]
    assert '<a href="sub-04.html">sub-04_T1w</a>' in page
    assert 'href="javascript' not in page  # an invalid participant id gets no link
    assert "segmentation failed &lt;script&gt;" in page
    assert page.count("<svg") == 3  # one strip plot per IQM (inline SVG: each point names its image on hover)


def test_participant_page_sections(sample_reports: dict[str, str]) -> None:
    page = sample_reports["participant"]
    for anchor in ('id="anat"', 'id="func"', 'id="methods"', 'id="errors"'):
        assert anchor in page
    assert "Esteban O" in page and "fmap: &lt;script&gt;" in page
    assert page.count("<img ") == 4



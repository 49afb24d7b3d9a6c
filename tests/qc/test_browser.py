"""Open the rendered reports in headless Chromium: no console errors, every image loads.

Chromium is driven directly (the ``chromium_status`` fixture of
``tests/conftest.py``): a copy of each page gets a small probe script that
records errors and image states into the DOM, which ``--dump-dom`` prints; the
same run saves a screenshot. The test skips when Chromium is absent, except
under ``CI=true`` where that is a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.mark.parametrize("name", ["participant", "group"])
def test_report_renders_in_chromium(
    name: str, sample_reports: dict[str, str], tmp_path: Path, chromium_status: Callable[..., dict]
) -> None:
    html = sample_reports[name]
    page = "sub-01.html" if name == "participant" else "group_T1w.html"
    status = chromium_status(html, page)
    screenshot = tmp_path / f"{Path(page).stem}.png"
    assert status["errors"] == []
    assert status["figures"] >= 3  # PNGs in the participant report, inline SVG strip plots in the group's
    if name == "group":
        assert status["points"] == html.count("<circle")  # every image's point is drawn, with its hover title
    assert status["broken"] == []
    assert screenshot.read_bytes().startswith(b"\x89PNG") and screenshot.stat().st_size > 10_000

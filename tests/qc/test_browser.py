"""Open the rendered reports in headless Chromium: no console errors, every image loads.

Chromium is driven directly: a copy of each page gets a small probe script that
records errors and image states into the DOM, which ``--dump-dom`` prints; the
same run saves a screenshot. The test skips when Chromium is absent, except
under ``CI=true`` where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

PROBE = """<script>
window.__qcErrors = [];
window.addEventListener("error", function (e) {
  window.__qcErrors.push(String(e.message || (e.target && (e.target.src || e.target.href)) || "error"));
}, true);
const __qcConsoleError = console.error;
console.error = function () { window.__qcErrors.push(Array.from(arguments).join(" ")); __qcConsoleError.apply(console, arguments); };
window.addEventListener("load", function () {
  const images = Array.from(document.images);
  const status = {
    images: images.length,
    figures: images.length + document.querySelectorAll("svg.strip").length,
    points: Array.from(document.querySelectorAll("svg.strip circle")).filter(function (c) {
      return c.getBBox().width > 0 && c.querySelector("title");
    }).length,
    broken: images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).map(function (i) { return i.alt; }),
    errors: window.__qcErrors,
  };
  const out = document.createElement("pre");
  out.id = "qc-status";
  out.hidden = true;
  out.textContent = JSON.stringify(status);
  document.body.appendChild(out);
});
</script>"""


def chromium_binary() -> str:
    """The Chromium executable; skip (or fail under CI) when there is none."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI") == "true":
        pytest.fail("Chromium is required under CI=true but was not found")
    pytest.skip("Chromium is not installed")


def open_in_chromium(binary: str, page: Path, screenshot: Path, profile: Path) -> dict:
    """Load ``page`` headless; return the probe's status and save a screenshot."""
    command = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--window-size=1280,1600",
        f"--screenshot={screenshot}", "--dump-dom", page.as_uri(),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    match = re.search(r'<pre id="qc-status"[^>]*>(.*?)</pre>', result.stdout, flags=re.S)
    assert match, (
        f"no probe status in Chromium's DOM (exit {result.returncode}): {result.stderr[-2000:]}"
    )
    return json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.mark.parametrize("name", ["participant", "group"])
def test_report_renders_in_chromium(
    name: str, sample_reports: dict[str, str], tmp_path: Path
) -> None:
    binary = chromium_binary()
    html = sample_reports[name]
    page = tmp_path / ("sub-01.html" if name == "participant" else "group_T1w.html")
    page.write_text(html, encoding="utf-8")
    probed = tmp_path / f"probe_{page.name}"
    probed.write_text(html.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    screenshot = tmp_path / f"{page.stem}.png"
    status = open_in_chromium(binary, probed, screenshot, tmp_path / "profile")
    assert status["errors"] == []
    assert status["figures"] >= 3  # PNGs in the participant report, inline SVG strip plots in the group's
    if name == "group":
        assert status["points"] == html.count("<circle")  # every image's point is drawn, with its hover title
    assert status["broken"] == []
    assert screenshot.read_bytes().startswith(b"\x89PNG") and screenshot.stat().st_size > 10_000

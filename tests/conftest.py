"""Shared fixtures: the real data folder, small BIDS trees, cropped real scans, the CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neurolearn_cli.engine.threads import MKL_CBWR

# before any test imports torch: idle OpenMP threads sleep, so a loaded CI runner is not slowed by spinning
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# MKL reads its reproducibility mode once, when torch loads: set it as the command does at start, so runs inside
# the test process give the same bytes as `neurolearn` in a subprocess (the kill-and-resume test compares them)
os.environ.setdefault("MKL_CBWR", MKL_CBWR)

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``heavy`` tests (minutes of real-data processing) unless NEUROLEARN_TEST_HEAVY=1.

    They keep CI under its time budget; ``make test-heavy`` runs them.
    """
    if os.environ.get("NEUROLEARN_TEST_HEAVY") == "1":
        return
    skip = pytest.mark.skip(reason="heavy real-data run; set NEUROLEARN_TEST_HEAVY=1 (make test-heavy)")
    for item in items:
        if "heavy" in item.keywords:
            item.add_marker(skip)


def shared_data_dir() -> Path:
    """``$NEUROLEARN_TEST_DATA`` or ``../shared/data`` from the repository root."""
    return Path(os.environ.get("NEUROLEARN_TEST_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder; tests that need it skip where it is absent (fail under CI)."""
    path = shared_data_dir()
    if not path.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"real data folder {path} is missing under CI")
        pytest.skip(f"real data folder {path} is absent")
    return path


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload), encoding="utf-8")


def _write_image(path: Path, data: np.ndarray, zooms: tuple[float, ...]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    affine = np.diag([*zooms[:3], 1.0])
    image = nib.Nifti1Image(data, affine)
    image.header.set_zooms(zooms)
    nib.save(image, path)


@pytest.fixture
def threads() -> Iterator[Callable[[int], None]]:
    """Set torch's intra-op thread count for the test; restored afterwards."""
    import torch  # here, not at the top: the environment above is set before torch loads

    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.fixture
def make_bids(tmp_path: Path) -> Callable[..., Path]:
    """Factory for a tiny synthetic BIDS tree (axes of different lengths, seeded)."""

    def build(participants: tuple[str, ...] = ("01", "02"), *, sessions: tuple[str, ...] = (),
              tasks: tuple[str, ...] = ("rest",), bold_meta: dict | None = None, root: Path | None = None) -> Path:
        root = root or tmp_path / "bids"
        rng = np.random.default_rng(0)
        _write_json(root / "dataset_description.json", {"Name": "tiny", "BIDSVersion": "1.9.0"})
        rows = ["participant_id\tage\tgroup"] + [f"sub-{p}\t{30 + i}\t{'a' if i % 2 else 'b'}" for i, p in enumerate(participants)]
        (root / "participants.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
        for label in participants:
            for session in sessions or (None,):
                base = root / f"sub-{label}" / (f"ses-{session}" if session else "")
                prefix = f"sub-{label}" + (f"_ses-{session}" if session else "")
                _write_image(base / "anat" / f"{prefix}_T1w.nii.gz", rng.random((7, 8, 9), dtype=np.float32) + 1, (2.0, 2.0, 2.0))
                for task in tasks:
                    bold = base / "func" / f"{prefix}_task-{task}_bold.nii.gz"
                    _write_image(bold, rng.random((6, 7, 8, 10), dtype=np.float32) + 1, (3.0, 3.0, 3.0, 2.0))
                    meta = {"RepetitionTime": 2.0, "TaskName": task} if bold_meta is None else bold_meta
                    _write_json(bold.with_name(bold.name.replace(".nii.gz", ".json")), meta)
        return root

    return build


@pytest.fixture
def real_scan_copy(tmp_path: Path) -> Callable[..., Path]:
    """Factory copying a real BIDS scan into a new tree, cropped and/or downsampled.

    ``real_scan_copy(src_bids, "sub-02/anat/sub-02_T1w.nii.gz", step=2, crop=((x0, x1), ...))``
    returns the new BIDS root; sidecars and ``dataset_description.json`` come along.
    """

    def build(source_root: Path, relpath: str, *, step: int = 1, crop: tuple | None = None,
              volumes: int | None = None, root: Path | None = None) -> Path:
        root = root or tmp_path / "realbids"
        root.mkdir(parents=True, exist_ok=True)
        shutil.copy(source_root / "dataset_description.json", root / "dataset_description.json")
        image = nib.load(source_root / relpath)
        data = np.asanyarray(image.dataobj)
        slices = tuple(slice(*c) for c in crop) if crop else (slice(None),) * 3
        data = data[slices][::step, ::step, ::step]
        if data.ndim == 4 and volumes:
            data = data[..., :volumes]
        origin = [s.start or 0 for s in slices]
        affine = image.affine.copy()
        affine[:3, 3] = nib.affines.apply_affine(image.affine, origin)
        affine[:3, :3] = image.affine[:3, :3] * step
        out = nib.Nifti1Image(data, affine, image.header)
        out.set_qform(affine, int(image.header["qform_code"]) or 1)
        out.set_sform(affine, int(image.header["sform_code"]) or 1)
        target = root / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        nib.save(out, target)
        for companion in (source_root / relpath).parent.glob((source_root / relpath).name.split(".")[0] + "*"):
            if companion.suffix in (".json", ".tsv"):
                shutil.copy(companion, target.parent / companion.name)
        sidecar_name = relpath.split("/")[-1].split(".")[0] + ".json"
        if not (target.parent / sidecar_name).exists() and (source_root / sidecar_name.split("_")[-1]).exists():
            shutil.copy(source_root / sidecar_name.split("_")[-1], target.parent / sidecar_name)
        return root

    return build


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``neurolearn`` in-process; return (exit code, stdout, stderr)."""
    from neurolearn_cli.cli.app import main

    def invoke(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in args])
        captured = capsys.readouterr()
        return int(exit_info.value.code or 0), captured.out, captured.err

    return invoke


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[int]]:
    """The example dataset (1 participant, 30 volumes) processed at participant and group level.

    Returns the BIDS root, the output directory and the two exit codes. Shared
    by the end-to-end checks and the kill-and-resume test (its reference run).
    """
    from neurolearn_cli.cli.app import main
    from neurolearn_cli.example_data import write_example_dataset

    root = tmp_path_factory.mktemp("e2e")
    bids = write_example_dataset(root / "bids", participants=1, seed=3, volumes=30)
    out = root / "out"
    codes = []
    for level in ("participant", "group"):
        with pytest.raises(SystemExit) as exit_info:
            main([str(bids), str(out), level, "--omp-nthreads", "2"])
        codes.append(exit_info.value.code)
    return bids, out, codes


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
    height: document.documentElement.scrollHeight,
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


def open_in_chromium(binary: str, page: Path, screenshot: Path, profile: Path, height: int = 1600) -> dict:
    """Load ``page`` headless in a 1280 x ``height`` window; return the probe's status and save a screenshot."""
    command = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        f"--user-data-dir={profile}", "--virtual-time-budget=5000", f"--window-size=1280,{height}",
        f"--screenshot={screenshot}", "--dump-dom", page.as_uri(),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    match = re.search(r'<pre id="qc-status"[^>]*>(.*?)</pre>', result.stdout, flags=re.S)
    assert match, (
        f"no probe status in Chromium's DOM (exit {result.returncode}): {result.stderr[-2000:]}"
    )
    return json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))

@pytest.fixture
def chromium_status(tmp_path: Path) -> Callable[..., dict]:
    """Open an HTML page's text in headless Chromium (with the probe); return its status, saving a screenshot.

    The screenshot is ``tmp_path/<page stem>.png``, of a window ``height`` pixels
    tall. Skips when Chromium is absent, except under ``CI=true`` where that fails.
    """
    binary = chromium_binary()

    def status(html: str, name: str = "page.html", height: int = 1600) -> dict:
        probed = tmp_path / f"probe_{name}"
        probed.write_text(html.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
        return open_in_chromium(binary, probed, tmp_path / f"{Path(name).stem}.png", tmp_path / "profile", height)

    return status


#: The world shift (mm) of the small TemplateFlow template below relative to nilearn's MNI152 it is made of.
TEMPLATE_SHIFT_MM = (6.0, -8.0, 5.0)


def write_templateflow_home(root: Path, name: str = "MNI152NLin6Asym", *, brain_mask: bool = True,
                            cohort: str | None = None) -> Path:
    """A TemplateFlow home holding a small template ``name`` made of nilearn's bundled MNI152 (no download).

    The 1 mm T1w is cropped, moved by :data:`TEMPLATE_SHIFT_MM` in world space
    (so it is not the bundled template's grid or position) and subsampled to
    ``res-02`` (2 mm) and ``res-04`` (4 mm), with TemplateFlow's names; the
    brain mask (``desc-brain_mask``, T1w > 0.2 of its maximum) and, at
    ``res-04``, GM, WM and CSF priors (nilearn's GM and WM maps, CSF the rest
    of the brain mask) unless ``brain_mask`` is False; in ``cohort-<cohort>/``
    with the ``cohort-`` entity when ``cohort`` is given. Returns the home.
    """
    from nilearn import datasets

    source = datasets.load_mni152_template(resolution=1)
    crop = (slice(8, -8), slice(10, -6), slice(4, -12))
    data = source.get_fdata(dtype=np.float32)[crop]
    grey = datasets.load_mni152_gm_template(resolution=1).get_fdata(dtype=np.float32)[crop]
    white = datasets.load_mni152_wm_template(resolution=1).get_fdata(dtype=np.float32)[crop]
    affine = source.affine.copy()
    affine[:3, 3] = nib.affines.apply_affine(source.affine, (8, 10, 4)) + np.array(TEMPLATE_SHIFT_MM)
    folder = root / f"tpl-{name}" / (f"cohort-{cohort}" if cohort else "")
    folder.mkdir(parents=True, exist_ok=True)
    prefix = f"tpl-{name}" + (f"_cohort-{cohort}" if cohort else "")
    for step in (2, 4):
        scaled = affine.copy()
        scaled[:3, :3] *= step
        t1w = data[::step, ::step, ::step]
        nib.save(nib.Nifti1Image(t1w, scaled), folder / f"{prefix}_res-0{step}_T1w.nii.gz")
        if brain_mask:
            mask = (t1w > 0.2 * t1w.max()).astype(np.uint8)
            nib.save(nib.Nifti1Image(mask, scaled), folder / f"{prefix}_res-0{step}_desc-brain_mask.nii.gz")
        if brain_mask and step == 4:
            gm, wm = grey[::step, ::step, ::step], white[::step, ::step, ::step]
            priors = {"GM": gm, "WM": wm, "CSF": np.clip(mask - gm - wm, 0, 1)}
            for tissue, prior in priors.items():
                nib.save(nib.Nifti1Image(prior.astype(np.float32), scaled),
                         folder / f"{prefix}_res-0{step}_label-{tissue}_probseg.nii.gz")
    return root


@pytest.fixture(scope="session")
def templateflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TemplateFlow home with a small MNI152NLin6Asym (see :func:`write_templateflow_home`)."""
    return write_templateflow_home(tmp_path_factory.mktemp("templateflow"))

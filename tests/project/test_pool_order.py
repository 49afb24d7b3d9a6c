"""The pool's order follows the participants' data, not the pseudonyms a site's random key gives them."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from neurolearn_cli.project.export import export_bundle
from neurolearn_cli.project.model import load_project
from neurolearn_cli.project.pin import RECORD_FOLDER
from neurolearn_cli.project.pool import pool_project

from .conftest import Site, write_project, write_site

TABLES = ("participants.tsv", "qc.tsv", "features/morph.tsv", "features/iqm.tsv", "site_effects.tsv")


def _pool_under_new_keys(path: Path, sites: list[Site], folder: Path) -> tuple[Path, dict[str, str]]:
    """Export every site under a fresh key (as from a new OUTPUT_DIR) and pool; also each pseudonym's site ID."""
    project = load_project(path)
    bundles: list[Path] = []
    site_ids: dict[str, str] = {}
    for site in sites:
        (site.out / RECORD_FOLDER / f"{project.name}.key").unlink(missing_ok=True)
        bundles.append(folder / f"{site.name}.tar.gz")
        export_bundle(project, path, site.bids, site.out, site.name, bundles[-1])
        mapping = pd.read_csv(site.out / RECORD_FOLDER / f"{project.name}_pseudonyms.tsv", sep="\t")
        site_ids.update(zip(mapping["pseudonym"], mapping["participant_id"], strict=True))
    return pool_project(path, bundles, folder / "pool", device="cpu"), site_ids


def _text(path: Path, site_ids: dict[str, str]) -> str:
    """A pool file's text with each pseudonym read as its site ID, and the bundles' and tables' digests left out."""
    text = re.sub(r"sub-[0-9a-f]{16}", lambda match: site_ids[match.group()], path.read_text())
    return re.sub(r"<code>[0-9a-f]{16}</code>|[0-9a-f]{64}", "", text)


def test_the_same_scans_under_two_site_keys_pool_to_the_same_order_and_results(tmp_path: Path) -> None:
    path = write_project(tmp_path / "project")
    sites = [write_site(tmp_path, "north", 1, 9, path, failed=3), write_site(tmp_path, "south", 101, 9, path)]
    (first, first_ids), (second, second_ids) = (_pool_under_new_keys(path, sites, tmp_path / name)
                                                for name in ("a", "b"))
    assert not set(first_ids) & set(second_ids)  # the keys differ, so do all pseudonyms

    for name in TABLES:
        a, b = (pd.read_csv(pool / name, sep="\t") for pool in (first, second))
        if "participant_id" in a.columns:  # the same participants, in the same order
            assert a.pop("participant_id").map(first_ids).tolist() == b.pop("participant_id").map(second_ids).tolist()
        pd.testing.assert_frame_equal(a, b)
    for name in ("mvpa/dx/results.json", "mvpa/dx/predictions.tsv", "mvpa/dx/report.html", "report.html"):
        assert _text(first / name, first_ids) == _text(second / name, second_ids), name  # figures too

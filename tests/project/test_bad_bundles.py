"""A bad bundle is refused by the pool with exit 2 and one line naming it and the problem; nothing is written."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from .conftest import Site, write_project, write_site

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def bundles(cli: Cli, three_sites: tuple[Path, list[Site]], tmp_path: Path) -> tuple[Path, list[Site], list[Path]]:
    """The three sites exported as folders (editable in place)."""
    project, sites = three_sites
    paths = []
    for site in sites:
        path = tmp_path / "bundles" / site.name
        code, _, stderr = cli("project", "export", project, site.bids, site.out, "--site", site.name, "--out", path)
        assert code == 0, stderr
        paths.append(path)
    return project, sites, paths


def _refused(cli: Cli, project: Path, paths: list[Path], out: Path) -> str:
    code, _, stderr = cli("project", "pool", project, *paths, "--out", out)
    assert code == 2, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("neurolearn: error: ")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    assert not out.exists() and not list(out.parent.glob(f".{out.name}*")), "a refused pool wrote something"
    return errors[0]


def _rewrite_manifest(bundle: Path) -> None:
    """Recompute the manifest's checksums, as a bundle made by a differing export would carry."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"] = {name: hashlib.sha256((bundle / name).read_bytes()).hexdigest() for name in manifest["files"]}
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def test_edited_value_is_refused(cli: Cli, bundles: tuple[Path, list[Site], list[Path]], tmp_path: Path) -> None:
    project, _, paths = bundles
    table = paths[1] / "features" / "morph.tsv"
    lines = table.read_text().splitlines()
    first, *rest = lines[1].split("\t")
    lines[1] = "\t".join([first, str(float(rest[0]) + 1.0), *rest[1:]])
    table.write_text("\n".join(lines) + "\n")
    stderr = _refused(cli, project, paths, tmp_path / "pool")
    assert f"{paths[1]}: features/morph.tsv: checksum differs from the manifest" in stderr


def test_bundle_of_another_project_is_refused(cli: Cli, bundles: tuple[Path, list[Site], list[Path]],
                                               tmp_path: Path) -> None:
    project, sites, paths = bundles
    other = write_project(tmp_path / "other", name="another")
    code, _, stderr = cli("project", "export", other, sites[0].bids, sites[0].out, "--site", "north", "--out",
                          tmp_path / "stray")
    assert code == 2 and "not run with --project" in stderr  # the site ran the first project only
    payload = yaml.safe_load(project.read_text())
    payload["description"] = "edited after the sites ran"
    edited = tmp_path / "edited" / "project.yaml"
    edited.parent.mkdir()
    edited.write_text(yaml.safe_dump(payload))
    stderr = _refused(cli, edited, paths, tmp_path / "pool")
    assert f"{paths[0]}: made for another project" in stderr


def test_missing_column_is_refused(cli: Cli, bundles: tuple[Path, list[Site], list[Path]], tmp_path: Path) -> None:
    project, _, paths = bundles
    table = paths[2] / "features" / "morph.tsv"
    pd.read_csv(table, sep="\t").drop(columns="L_gm_05").to_csv(table, sep="\t", index=False)
    _rewrite_manifest(paths[2])
    stderr = _refused(cli, project, paths, tmp_path / "pool")
    assert f"{paths[2]}: features/morph.tsv: missing column 'L_gm_05' compared with bundle {paths[0]}" in stderr


def test_duplicate_participant_is_refused(cli: Cli, bundles: tuple[Path, list[Site], list[Path]],
                                          tmp_path: Path) -> None:
    project, sites, paths = bundles
    twin = tmp_path / "bundles" / "north2"
    code, _, stderr = cli("project", "export", project, sites[0].bids, sites[0].out, "--site", "north2", "--out", twin)
    assert code == 0, stderr
    stderr = _refused(cli, project, [*paths, twin], tmp_path / "pool")
    assert f"{twin}: participant sub-" in stderr and f"is also in bundle {paths[0]}" in stderr


def test_missing_file_and_foreign_folder_are_refused(cli: Cli, bundles: tuple[Path, list[Site], list[Path]],
                                                     tmp_path: Path) -> None:
    project, _, paths = bundles
    (paths[1] / "qc.tsv").unlink()
    assert "qc.tsv is listed in the manifest but missing" in _refused(cli, project, paths, tmp_path / "pool")
    shutil.rmtree(paths[1])
    paths[1].mkdir()
    assert f"{paths[1]}: no manifest.json: not a neurolearn site bundle" in _refused(cli, project, paths, tmp_path / "pool")


def test_free_text_is_not_shared(cli: Cli, tmp_path: Path) -> None:
    project = write_project(tmp_path / "project")
    payload = yaml.safe_load(project.read_text())
    payload["share_columns"] = ["age", "notes"]
    project.write_text(yaml.safe_dump(payload))
    site = write_site(tmp_path, "north", 1, 14, project)
    code, _, stderr = cli("project", "export", project, site.bids, site.out, "--site", "north", "--out",
                          tmp_path / "bundle")
    assert code == 2 and "column 'notes' reads as free text (14 different values)" in stderr
    assert not (tmp_path / "bundle").exists()


def test_an_analysis_that_does_not_fit_the_pool_names_the_project_field(cli: Cli, tmp_path: Path) -> None:
    project = write_project(tmp_path / "project")
    payload = yaml.safe_load(project.read_text())
    payload["analyses"][0]["validation"]["outer"] = 30
    project.write_text(yaml.safe_dump(payload))
    paths = []
    for name, first in (("north", 1), ("south", 101)):
        site = write_site(tmp_path, name, first, 8, project)
        paths.append(tmp_path / "bundles" / name)
        assert cli("project", "export", project, site.bids, site.out, "--site", name, "--out", paths[-1])[0] == 0
    stderr = _refused(cli, project, paths, tmp_path / "pool")
    assert f"{project}: field 'analyses.dx.validation.outer':" in stderr

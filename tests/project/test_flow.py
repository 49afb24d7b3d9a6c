"""The collaborative flow end to end: export at three sites, pool, analyses, report, reproducibility."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from .conftest import Site

Cli = Callable[..., tuple[int, str, str]]


def _export(cli: Cli, project: Path, site: Site, out: Path, *extra: str) -> None:
    code, stdout, stderr = cli("project", "export", project, site.bids, site.out, "--site", site.name, "--out", out, *extra)
    assert code == 0, stderr


def _bundles(cli: Cli, project: Path, sites: list[Site], folder: Path) -> list[Path]:
    paths = [folder / "north", folder / "south.tar.gz", folder / "east.tar.gz"]  # a folder and two archives
    for site, path in zip(sites, paths, strict=True):
        _export(cli, project, site, path)
    return paths


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def test_three_sites_export_pool_and_report(cli: Cli, three_sites: tuple[Path, list[Site]], tmp_path: Path) -> None:
    project, sites = three_sites
    bundles = _bundles(cli, project, sites, tmp_path / "bundles")

    # nothing identifying leaves a site: pseudonyms, no free text, the failed participant listed without features
    south = _members(bundles[1])
    assert sorted(south) == ["features/iqm.tsv", "features/morph.tsv", "manifest.json", "participants.tsv", "qc.tsv"]
    shared = pd.read_csv(io.BytesIO(south["participants.tsv"]), sep="\t")
    assert list(shared.columns) == ["participant_id", "age", "sex", "group"]
    assert not shared["participant_id"].str.fullmatch(r"sub-1\d\d").any()
    assert shared["participant_id"].str.fullmatch(r"sub-[0-9a-f]{16}").all()
    north_manifest = json.loads((bundles[0] / "manifest.json").read_text())
    assert north_manifest["participants"] == 13 and len(north_manifest["not_done"]["failed"]) == 1
    north_qc = pd.read_csv(bundles[0] / "qc.tsv", sep="\t")
    assert (north_qc["status"] == "failed").sum() == 1 and "reason" not in north_qc.columns
    failed = north_manifest["not_done"]["failed"][0]
    assert failed not in set(pd.read_csv(bundles[0] / "features" / "morph.tsv", sep="\t")["participant_id"])
    mapping = pd.read_csv(sites[0].out / "logs" / "project" / "consortium_pseudonyms.tsv", sep="\t")
    assert mapping.set_index("pseudonym").loc[failed, "participant_id"] == "sub-003"  # the site can map back
    # the same outputs exported again give the same bytes (the key is kept at the site)
    _export(cli, project, sites[1], tmp_path / "again.tar.gz")
    assert (tmp_path / "again.tar.gz").read_bytes() == bundles[1].read_bytes()

    code, _, stderr = cli("project", "pool", project, *bundles, "--out", tmp_path / "pool_a", "--device", "cpu")
    assert code == 0, stderr
    pool = tmp_path / "pool_a"
    assert f"outputs in {pool / 'mvpa' / 'dx'}" in stderr and ".partial" not in stderr  # where they are, not staged
    sites_table = pd.read_csv(pool / "sites.tsv", sep="\t").set_index("site")
    assert sites_table.loc["north", "participants"] == 13 and sites_table.loc["north", "excluded"] == 1
    participants = pd.read_csv(pool / "participants.tsv", sep="\t")
    assert list(participants.columns) == ["participant_id", "site", "age", "sex", "group"] and len(participants) == 42

    # the planted site effect is visible in the raw features and gone after ComBat (inside the folds)
    effects = pd.read_csv(pool / "site_effects.tsv", sep="\t").set_index("feature_set")
    assert effects.loc["morph", "site_auc_raw"] > 0.9
    assert effects.loc["morph", "site_auc_combat"] < 0.7
    # the planted group difference is found
    results = json.loads((pool / "mvpa" / "dx" / "results.json").read_text())
    assert results["metric"] == "roc_auc" and results["mean"] > 0.8 and results["n_samples"] == 41
    assert results["sites"] == ["east", "north", "south"]

    page = (pool / "report.html").read_text()
    assert 'href="mvpa/dx/report.html"' in page and "<td>north</td>" in page
    assert page.count("data:image/png;base64,") >= 3 and "Pooling of project consortium" in page

    # pooled twice: byte-identical
    code, _, stderr = cli("project", "pool", project, *bundles, "--out", tmp_path / "pool_b", "--device", "cpu")
    assert code == 0, stderr
    code, stdout, stderr = cli("verify", pool, "--against", tmp_path / "pool_b")
    assert code == 0, stdout + stderr
    assert cli("verify", pool)[0] == 0


def test_keep_ids_shares_the_site_ids(cli: Cli, three_sites: tuple[Path, list[Site]], tmp_path: Path) -> None:
    project, sites = three_sites
    _export(cli, project, sites[1], tmp_path / "kept", "--keep-ids", "--participant-label", "101", "sub-102")
    shared = pd.read_csv(tmp_path / "kept" / "participants.tsv", sep="\t")
    assert shared["participant_id"].tolist() == ["sub-101", "sub-102"]
    assert json.loads((tmp_path / "kept" / "manifest.json").read_text())["pseudonymized"] is False
    assert not (sites[1].out / "logs" / "project" / "consortium.key").exists()
    code, _, stderr = cli("project", "export", project, sites[1].bids, sites[1].out, "--site", "south", "--out",
                          tmp_path / "other", "--participant-label", "999")
    assert code == 2 and "--participant-label: sub-999 is not in participants.tsv" in stderr

"""Shared fixtures: small synthetic tabular studies and the SOOP table."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

torch.set_num_threads(1)  # tiny problems: spare the shared cores the thread pool's spinning

DATA = Path(os.environ.get("NEUROLEARN_TEST_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))


@pytest.fixture(autouse=True)
def _unconfigured_package_logger() -> None:
    """Undo the ``neurolearn`` logger set up by an earlier command-line run (it stops propagation), for caplog."""
    logger = logging.getLogger("neurolearn")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


def make_study(root: Path, *, n: int = 60, p: int = 12, effect: float = 0.0, task: str = "classification",
               seed: int = 0, sites: int = 1) -> tuple[Path, Path]:
    """A BIDS folder with only participants.tsv (target ``group``/``score``, ``age``, ``sex``, ``site``)
    and a features table whose first three features carry ``effect`` times the target.

    Returns the BIDS folder and the features table's path.
    """
    rng = np.random.default_rng(seed)
    ids = [f"sub-{i:03d}" for i in range(n)]
    site = np.arange(n) % sites
    features = rng.normal(size=(n, p))
    if task == "classification":
        label = np.array(["patient", "control"])[np.arange(n) % 2]
        signal = (label == "patient").astype(float) * 2 - 1
        participants = pd.DataFrame({"participant_id": ids, "group": label})
    else:
        signal = rng.normal(size=n)
        participants = pd.DataFrame({"participant_id": ids, "score": signal * 3 + 10})
    features[:, :3] += effect * signal[:, None]
    participants["age"] = rng.uniform(20, 80, n).round(1)
    participants["sex"] = rng.choice(["F", "M"], n)
    participants["site"] = [f"s{s}" for s in site]
    bids = root / "bids"
    bids.mkdir(parents=True)
    (bids / "dataset_description.json").write_text(json.dumps({"Name": "synthetic", "BIDSVersion": "1.9.0"}))
    participants.to_csv(bids / "participants.tsv", sep="\t", index=False)
    table = root / "features.tsv"
    frame = pd.DataFrame(features, columns=[f"roi{j:02d}" for j in range(p)])
    frame.insert(0, "participant_id", ids)
    frame.to_csv(table, sep="\t", index=False)
    return bids, table


@pytest.fixture
def soop_table() -> Path:
    path = DATA / "soop" / "merged_artery_participants.tsv"
    if not path.exists():
        pytest.skip("SOOP table not available")
    return path

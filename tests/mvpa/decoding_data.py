"""A synthetic block-design study laid out as raw BIDS events plus fmri derivatives.

One participant, one run of ``n_blocks`` blocks (cycling through
``conditions``), each of 8 two-second trials then 8 s of rest; TR 2 s.
Each condition ``c`` with a value in ``signal`` adds that amplitude
(HRF-convolved) to its own 2 x 4 x 4 voxels; the rest is seeded Gaussian noise.
Axes all differ (7 x 8 x 9).
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

SHAPE = (7, 8, 9)
TR = 2.0


def write_study(root: Path, *, signal: dict[str, float], conditions: tuple[str, ...] = ("face", "house", "chair"),
                n_blocks: int = 12, seed: int = 0) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """Write ``root/bids`` (events) and ``root/out`` (BOLD, confounds); return them and each condition's voxels."""
    from nilearn.glm.first_level import compute_regressor

    rng = np.random.default_rng(seed)
    rows = []
    for block in range(n_blocks):
        start = 10.0 + block * 24.0
        rows += [(start + 2.0 * t, 1.5, conditions[block % len(conditions)]) for t in range(8)]
    events = pd.DataFrame(rows, columns=["onset", "duration", "trial_type"])
    n_volumes = int((events["onset"].max() + 20) / TR)
    frame_times = np.arange(n_volumes) * TR + TR / 2
    data = 1000 + rng.normal(0, 5, (*SHAPE, n_volumes))
    voxels = {}
    for index, condition in enumerate(conditions):
        chosen = events[events["trial_type"] == condition]
        regressor = compute_regressor(chosen[["onset", "duration"]].assign(a=1.0).to_numpy().T, "glover", frame_times)[0][:, 0]
        voxels[condition] = np.array([[2 * index + i, j, k] for i in range(2) for j in range(4) for k in range(4)])
        for x, y, z in voxels[condition]:
            data[x, y, z] += signal.get(condition, 0.0) * regressor
    bids, out = root / "bids", root / "out"
    func = bids / "sub-01" / "func"
    func.mkdir(parents=True)
    (bids / "dataset_description.json").write_text(json.dumps({"Name": "synthetic", "BIDSVersion": "1.9.0"}))
    events.to_csv(func / "sub-01_task-loc_run-1_events.tsv", sep="\t", index=False)
    derivative = out / "sub-01" / "func"
    derivative.mkdir(parents=True)
    stem = "sub-01_task-loc_run-1_space-MNI152NLin2009aSym_res-2_desc-preproc_bold"
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-6.0, -8.0, -8.0]
    nib.save(nib.Nifti1Image(data.astype(np.float32), affine), derivative / f"{stem}.nii.gz")
    (derivative / f"{stem}.json").write_text(json.dumps({"RepetitionTime": TR}))
    motion = rng.normal(0, 0.01, (n_volumes, 6))
    confounds = pd.DataFrame(motion, columns=["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"])
    confounds["white_matter"] = rng.normal(0, 1, n_volumes)
    confounds["csf"] = rng.normal(0, 1, n_volumes)
    confounds["trans_x_derivative1"] = confounds["trans_x"].diff()
    confounds.to_csv(derivative / "sub-01_task-loc_run-1_desc-confounds_timeseries.tsv", sep="\t", index=False,
                     na_rep="n/a")
    return bids, out, voxels

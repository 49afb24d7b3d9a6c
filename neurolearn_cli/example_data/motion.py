"""Head motion during the BOLD run: a slow drift plus one or two sudden jerks.

Parameters follow fMRIPrep's confound names (trans_x, ..., rot_z; mm and
radians), relative to the first volume, so they are a ground truth for
motion correction.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

MOTION_COLUMNS = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
#: Typical size of the drift over the run and of a jerk: mm for translations, radians for rotations.
_DRIFT = np.array([0.3, 0.5, 0.6, np.radians(0.5), np.radians(0.3), np.radians(0.3)])
_JERK = np.array([0.4, 0.6, 0.8, np.radians(0.6), np.radians(0.4), np.radians(0.4)])


def simulate_motion(rng: np.random.Generator, volumes: int) -> np.ndarray:
    """Motion parameters ``(volumes, 6)``, zero at the first volume."""
    steps = gaussian_filter1d(rng.standard_normal((volumes, 6)), sigma=4.0, axis=0)
    drift = np.cumsum(steps, axis=0)
    drift *= _DRIFT / np.maximum(np.abs(drift).max(axis=0), 1e-9)
    jerks = np.zeros((volumes, 6))
    for start in np.sort(rng.choice(np.arange(volumes // 5, volumes - 3), size=int(rng.integers(1, 3)), replace=False)):
        jerks[start:] += _JERK * rng.uniform(-1.0, 1.0, size=6)
    params = drift + jerks
    return params - params[0]

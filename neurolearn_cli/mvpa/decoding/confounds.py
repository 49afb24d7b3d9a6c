"""Choose the nuisance regressors of a run from its fMRIPrep-style confounds table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from neurolearn_cli.errors import InputError

_MOTION = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
PRESETS: dict[str, list[str]] = {
    "motion": _MOTION,
    "motion24": [f"{m}{s}" for s in ("", "_derivative1", "_power2", "_derivative1_power2") for m in _MOTION],
    "wm_csf": ["white_matter", "csf"],
    "global_signal": ["global_signal"],
    "acompcor": [f"a_comp_cor_{i:02d}" for i in range(5)],
}
#: Presets naming every column with a prefix (spike regressors), none when there are none.
PREFIXES: dict[str, str] = {"non_steady_state": "non_steady_state_outlier", "motion_outliers": "motion_outlier"}


def confound_columns(available: list[str], wanted: list[str], source: Path) -> list[str]:
    """Column names for the presets and names in ``wanted``, in order, each once.

    Raises
    ------
    InputError
        Naming the confounds file and the first missing column.
    """
    columns: list[str] = []
    for item in wanted:
        if item in PREFIXES:
            found = [c for c in available if c.startswith(PREFIXES[item])]
        else:
            found = PRESETS.get(item, [item])
            missing = [c for c in found if c not in available]
            if missing:
                via = f" (glm.confounds '{item}')" if item in PRESETS else " (glm.confounds)"
                raise InputError(source, f"no column '{missing[0]}'{via}")
        columns += [c for c in found if c not in columns]
    return columns


def nuisance_matrix(table: pd.DataFrame, columns: list[str], n_volumes: int, source: Path) -> np.ndarray:
    """The chosen columns as a float matrix; leading n/a (derivatives' first row) become 0.

    Raises
    ------
    InputError
        When the table's rows do not match the run's volumes.
    """
    if len(table) != n_volumes:
        raise InputError(source, f"{len(table)} rows but the run has {n_volumes} volumes")
    values = table[columns].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    return np.nan_to_num(values, nan=0.0)

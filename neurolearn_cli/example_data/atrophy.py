"""Grey-matter loss: a regional pattern in patients plus a mild global effect of age.

Lost GM becomes CSF (thinner cortex, wider sulci and ventricles), so both the
tissue fractions and the T1w intensity change where atrophy is simulated.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from neurolearn_cli.example_data.template import TemplateMaps

#: Fraction of GM lost at the centre of an atrophy region at severity 1.
MAX_REGIONAL_LOSS = 0.8
#: Fraction of GM lost per year of age, relative to age 50 (negative when younger).
LOSS_PER_YEAR = 0.002
#: Template T1w intensity (0..1 scale) of pure GM and of CSF.
T1_GM, T1_CSF = 0.65, 0.27


def gm_loss(region: np.ndarray, severity: float, age: float) -> np.ndarray:
    """Fraction of GM lost per voxel, from the atrophy region weights, severity (0..1) and age."""
    return (LOSS_PER_YEAR * (age - 50.0) + MAX_REGIONAL_LOSS * severity * region).astype(np.float32)


def apply_atrophy(maps: TemplateMaps, loss: np.ndarray) -> TemplateMaps:
    """Move ``loss`` of each voxel's GM into CSF and darken the T1w accordingly."""
    moved = maps.gm * loss
    return replace(
        maps,
        gm=maps.gm - moved,
        csf=maps.csf + moved,
        t1=maps.t1 - moved * (T1_GM - T1_CSF),
    )

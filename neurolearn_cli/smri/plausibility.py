"""Checks that turn an implausible structural result into a failure instead of an output.

A pipeline that always finishes can stamp a template-shaped brain on any
input (a T1w of pure noise completes otherwise). Each check measures one
thing and raises :class:`~neurolearn_cli.errors.ProcessingError` naming the
measured value and the bound, so the participant fails (exit 1) before
anything is written. The bounds are wide on purpose: they catch a wrong
measurement, not an unusual participant.

- **Intracranial volume**, 800 to 2300 mL. Adult means are 1289 ± 111 mL
  (women) and 1469 ± 102 mL (men) (Matsumae et al. 1996, J Neurosurg
  84:982); the bounds lie more than 4 SD below the women's and 8 SD above the
  men's mean, which keeps the example simulator's largest heads (up to
  2063 mL) and leaves room for the estimator's error.
- **GM and WM fractions of TIV**, 0.25 to 0.65 and 0.2 to 0.55: they
  bracket the adult range (GM about 0.35 to 0.50, WM about 0.30 to 0.40,
  shrinking with age) with a margin for the first, affine-prior pass.
- **Normalization similarity**, the SyN local correlation with the template
  at least 0.75. Right maps: 0.88 to 0.89 on the three real scans at 2 mm,
  0.87 to 0.89 on their perturbed copies whose mask agrees with the
  original's, 0.78 to 0.79 for studyforrest and its copies at 2.8 mm, 0.95
  to 0.97 on simulated ones.
  Wrong maps: 0.74 for xa30 with its scalp in the mask, 0.70 for its
  neck-to-vertex copy before the field of view was cut (TIV 2009 mL, GM
  +27 %), 0.59 to 0.73 for copies whose mask missed the original's by a
  Dice of 0.78 to 0.88, 0.29 to 0.42 for a T1w of uniform noise
  (``benchmarks/RESULTS.md``, section robustness).
- **Signal-to-noise ratio**, the white matter's mean over the air's noise SD
  on the initialization's 3 mm copy (only where the background holds a noise
  sample), at least 8, the geometric middle of the measured margin. Right
  maps: 10.2 on studyforrest and 25.0 and 24.1 on xa30 and aomic with Rician
  noise doubling the noise SD (mask Dice >= 0.956 against the original run,
  GM and WM within 10 %), 16.5 to 27.4 on the simulated participants of the
  example data, 90 on xa30. Wrong maps: 6.4 and 6.3 on the same scans
  with eight times the noise SD (GM -12 % and -37 %, while mask Dice, 0.96
  and 0.97, and similarity, 0.85 and 0.87, look right).
- **Brain mask on the image border**: at most 10 % of the grid's face voxels
  inside the mask. A brain cropped at the top of the field of view touches
  one face over its cross-section (a few % of all faces); a mask that has
  leaked into the background covers most of them.
"""

from __future__ import annotations

import torch

from neurolearn_cli.engine.image import Image
from neurolearn_cli.errors import ProcessingError

PLAUSIBLE_TIV_ML = (800.0, 2300.0)
PLAUSIBLE_GM_FRACTION = (0.25, 0.65)
PLAUSIBLE_WM_FRACTION = (0.2, 0.55)
MIN_SYN_SIMILARITY = 0.75
MIN_WM_SNR = 8.0
MAX_MASK_BORDER_FRACTION = 0.10


def check_volumes(volumes: dict[str, float]) -> None:
    """Raise :class:`ProcessingError` when TIV or the GM/WM fractions of it are not an adult brain's."""
    tiv = volumes["TIV"]
    low, high = PLAUSIBLE_TIV_ML
    if not low <= tiv <= high:
        raise ProcessingError(f"segmentation: implausible intracranial volume {tiv:.0f} mL "
                              f"(adult range taken as {low:.0f} to {high:.0f} mL)")
    for name, (low, high) in (("GM", PLAUSIBLE_GM_FRACTION), ("WM", PLAUSIBLE_WM_FRACTION)):
        fraction = volumes[name] / tiv
        if not low <= fraction <= high:
            raise ProcessingError(f"segmentation: implausible {name} fraction {fraction:.2f} of the intracranial "
                                  f"volume (adult range taken as {low:.2f} to {high:.2f})")


def check_normalization(similarity: float) -> None:
    """Raise :class:`ProcessingError` when the normalized brain hardly resembles the template."""
    if not similarity >= MIN_SYN_SIMILARITY:
        raise ProcessingError(f"normalization: local correlation with the template {similarity:.2f}, "
                              f"below {MIN_SYN_SIMILARITY:.2f} (the brain is not where the template was placed, or the "
                              "image is not a brain)")


def check_snr(wm_snr: float | None) -> None:
    """Raise :class:`ProcessingError` when the image is too noisy for its tissue volumes (None: not measured)."""
    if wm_snr is not None and not wm_snr >= MIN_WM_SNR:
        raise ProcessingError(f"segmentation: signal-to-noise ratio {wm_snr:.1f} of the white matter against the "
                              f"air's noise, below {MIN_WM_SNR:.0f} (below it the grey and white matter volumes are "
                              "unreliable)")


def mask_border_fraction(mask: torch.Tensor) -> float:
    """Fraction of the voxels on the six faces of the grid that lie inside boolean ``mask``."""
    faces = [mask.select(axis, index) for axis in range(3) for index in (0, -1)]
    inside = sum(float(face.sum()) for face in faces)
    return inside / sum(face.numel() for face in faces)


def check_mask_border(mask: Image) -> float:
    """Raise :class:`ProcessingError` when the brain mask covers much of the image border; return the fraction."""
    fraction = mask_border_fraction(mask.data > 0.5)
    if fraction > MAX_MASK_BORDER_FRACTION:
        raise ProcessingError(f"brain mask: covers {100 * fraction:.0f} % of the image border "
                              f"(at most {100 * MAX_MASK_BORDER_FRACTION:.0f} %): it has leaked outside the head")
    return fraction

"""The T1w image: MPRAGE-like contrast, receive bias, Rician noise, int16 storage."""

from __future__ import annotations

import numpy as np

from neurolearn_cli.example_data.acquisition import rician, to_int16
from neurolearn_cli.example_data.atrophy import T1_CSF
from neurolearn_cli.example_data.deform import bias_field
from neurolearn_cli.example_data.head import HeadLayers
from neurolearn_cli.example_data.participants import Site
from neurolearn_cli.example_data.template import TemplateMaps

#: T1w intensity (template scale, WM about 0.86) of the non-brain tissues.
T1_SKULL, T1_SCALP, T1_SOFT = 0.06, 1.0, 0.42
#: Tissue labels of the ground-truth segmentation (fMRIPrep's dseg convention).
DSEG_LABELS = {"GM": 1, "WM": 2, "CSF": 3}


def t1_contrast(maps: TemplateMaps, head: HeadLayers, gamma: float) -> np.ndarray:
    """Noise-free T1w in template space: the template brain inside the synthetic head.

    ``gamma`` bends the contrast (a site's sequence differs from another's).
    """
    image = maps.t1 + T1_CSF * head.csf + T1_SKULL * head.skull + T1_SCALP * head.scalp + T1_SOFT * head.soft
    return np.power(np.clip(image, 0.0, None), gamma)


def tissue_labels(maps: TemplateMaps) -> np.ndarray:
    """Hard GM/WM/CSF labels (1/2/3) where the brain fraction is at least one half, else 0."""
    labels = np.argmax(np.stack([maps.gm, maps.wm, maps.csf]), axis=0).astype(np.uint8) + 1
    labels[maps.brain < 0.5] = 0
    return labels


def acquire_t1w(rng: np.random.Generator, native: np.ndarray, site: Site) -> np.ndarray:
    """Scan a noise-free native-space T1w: the site's smooth bias (about +-20% at siteA), Rician noise, scale, int16."""
    bias = bias_field(rng, native.shape, spacing=24.0, spread=site.bias_spread)
    return to_int16(site.t1_scale * rician(rng, native * bias, site.t1_noise))

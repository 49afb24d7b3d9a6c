"""Everything the simulation needs in template space, built once per process."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from neurolearn_cli.example_data.geometry import world_coordinates
from neurolearn_cli.example_data.head import HeadLayers, build_head
from neurolearn_cli.example_data.regions import (
    ATROPHY_CENTRES,
    ATROPHY_SIGMA_MM,
    DROPOUT_CENTRES,
    FUSIFORM_CENTRES,
    OCCIPITAL_CENTRES,
    blob_map,
)
from neurolearn_cli.example_data.template import TemplateMaps, load_template


@dataclass(frozen=True)
class ExampleSpace:
    """Template brain, synthetic head and region weight maps on the 2 mm template grid."""

    template: TemplateMaps
    head: HeadLayers
    atrophy: np.ndarray
    occipital: np.ndarray
    fusiform: np.ndarray
    dropout: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        """Grid shape."""
        return self.template.t1.shape

    @property
    def affine(self) -> np.ndarray:
        """Grid voxel-to-world matrix."""
        return self.template.affine


@lru_cache(maxsize=1)
def example_space() -> ExampleSpace:
    """Build the template-space ingredients (cached: about 5 s, the same for every participant)."""
    template = load_template()
    coords = world_coordinates(template.t1.shape, template.affine)
    return ExampleSpace(
        template=template,
        head=build_head(template.brain, template.affine),
        atrophy=blob_map(coords, ATROPHY_CENTRES, ATROPHY_SIGMA_MM),
        occipital=blob_map(coords, OCCIPITAL_CENTRES, 7.0) * template.gm,
        fusiform=blob_map(coords, FUSIFORM_CENTRES, 6.0) * template.gm,
        dropout=blob_map(coords, DROPOUT_CENTRES, 10.0),
    )

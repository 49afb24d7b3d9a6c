"""One participant, from phenotype to arrays: the T1w, the BOLD run and their ground truth.

Randomness comes from ``numpy.random.default_rng([seed, index])``, split into
independent streams for demographics, anatomy and the BOLD run, so participant
``k`` is the same whatever the number of participants.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from neurolearn_cli.example_data.anat import acquire_t1w, t1_contrast, tissue_labels
from neurolearn_cli.example_data.atrophy import apply_atrophy, gm_loss
from neurolearn_cli.example_data.bold import BoldRun, simulate_bold, t2star_contrast
from neurolearn_cli.example_data.deform import random_pose, smooth_random_field, warp_points
from neurolearn_cli.example_data.design import draw_events
from neurolearn_cli.example_data.geometry import sample
from neurolearn_cli.example_data.participants import (
    SITES,
    Participant,
    Site,
    draw_participant,
    site_code,
)
from neurolearn_cli.example_data.protocol import BOLD, BoldProtocol
from neurolearn_cli.example_data.space import ExampleSpace

#: RMS of the nonlinear displacement (mm) and its feature size (voxels of the 2 mm grid).
WARP_RMS_MM, WARP_SPACING = 1.5, 10.0


@dataclass(frozen=True)
class ParticipantData:
    """Arrays for one participant, on the T1w grid (``affine``) and the BOLD grid."""

    participant: Participant
    t1w: np.ndarray
    dseg: np.ndarray
    affine: np.ndarray
    events: pd.DataFrame | None
    bold: BoldRun | None


def simulate_participant(
    index: int, seed: int, space: ExampleSpace, protocol: BoldProtocol = BOLD, *, with_bold: bool = True,
    scanner: Site | None = None,
) -> ParticipantData:
    """Simulate participant ``index`` (1-based) of the dataset generated with ``seed``.

    ``with_bold=False`` leaves out the BOLD run and its events (``None``); the
    anatomy is the same either way (independent random streams). ``scanner``
    puts the participant at that site; its participants are other people than
    the default dataset's (their random streams are seeded by the site's name too).
    """
    streams = [seed, index] if scanner is None else [seed, index, site_code(scanner.name)]
    demographics_rng, anatomy_rng, bold_rng = np.random.default_rng(streams).spawn(3)
    participant = draw_participant(index, demographics_rng, None if scanner is None else scanner.name)
    site = SITES[participant.site] if scanner is None else scanner
    loss = gm_loss(space.atrophy, participant.severity, participant.age) + np.float32(site.gm_offset)
    maps = apply_atrophy(space.template, loss)

    # the MNI152 brain (about 2 L here) is larger than most: heads are drawn 3% smaller on average
    pose = random_pose(anatomy_rng, shift_mm=3.0, tilt_deg=3.0, size_sd=0.03, size_mean=0.97)
    displacement = WARP_RMS_MM * smooth_random_field(anatomy_rng, space.shape, WARP_SPACING, count=3)
    points = warp_points(pose, displacement, space.affine)

    def warp(volume: np.ndarray, order: int = 1) -> np.ndarray:
        return sample(volume, points, order=order).reshape(space.shape)

    t1w = acquire_t1w(anatomy_rng, warp(t1_contrast(maps, space.head, site.t1_gamma)), site)
    dseg = warp(tissue_labels(maps), order=0).astype(np.uint8)
    if not with_bold:
        return ParticipantData(participant=participant, t1w=t1w, dseg=dseg, affine=np.asarray(space.affine),
                               events=None, bold=None)
    native = {
        "baseline": warp(t2star_contrast(maps, space.head, space.dropout)),
        "occipital": warp(space.occipital),
        "fusiform": warp(space.fusiform),
    }
    events = draw_events(bold_rng, protocol)
    bold = simulate_bold(bold_rng, native, space.affine, events, site, protocol)
    return ParticipantData(
        participant=participant,
        t1w=t1w,
        dseg=dseg,
        affine=np.asarray(space.affine),
        events=events,
        bold=bold,
    )

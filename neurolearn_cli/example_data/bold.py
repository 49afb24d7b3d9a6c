"""The BOLD run: T2*-like contrast, task response, head motion, drifts and noise.

The participant's head (native space, the T1w grid) is repositioned for the
run and moved volume by volume; each volume samples the native image through
that volume's rigid transform. The task response follows each slice's own
acquisition time, so slice-timing correction has something to correct.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.ndimage import affine_transform

from neurolearn_cli.example_data.acquisition import rician, to_int16
from neurolearn_cli.example_data.deform import bias_field
from neurolearn_cli.example_data.design import condition_responses
from neurolearn_cli.example_data.geometry import grid_points, rigid_matrix, sample, voxel_map
from neurolearn_cli.example_data.head import HeadLayers
from neurolearn_cli.example_data.motion import simulate_motion
from neurolearn_cli.example_data.participants import Site
from neurolearn_cli.example_data.protocol import BoldProtocol
from neurolearn_cli.example_data.template import TemplateMaps

#: Baseline T2*-weighted signal of each tissue (CSF brightest, GM above WM, fat suppressed).
T2S_GM, T2S_WM, T2S_CSF, T2S_SKULL, T2S_SCALP, T2S_SOFT = 0.72, 0.55, 1.0, 0.03, 0.22, 0.3
#: Fraction of signal lost at the centre of a dropout region.
DROPOUT_DEPTH = 0.8
#: Percent signal change (as a fraction) of each region for each condition.
OCCIPITAL_AMPLITUDE = {"face": 0.04, "scrambled": 0.04}
FUSIFORM_AMPLITUDE = {"face": 0.04, "scrambled": 0.015}
#: Labels of the ground-truth activation map.
ACTIVATION_LABELS = {"occipital": 1, "fusiform": 2}
#: Excess signal of the first, non-steady-state volume, and its decay per volume.
NONSTEADY_EXCESS, NONSTEADY_DECAY = 1.2, 0.35


@dataclass(frozen=True)
class BoldRun:
    """A simulated run and its ground truth.

    Attributes
    ----------
    data : ndarray
        int16 ``(x, y, z, t)`` on the protocol's grid.
    motion : ndarray
        ``(t, 6)`` true motion parameters relative to the first volume (mm, radians).
    nonsteady : int
        Number of initial non-steady-state volumes.
    activation : ndarray
        uint8 map on the BOLD grid at the first volume's position: 1 occipital, 2 fusiform.
    """

    data: np.ndarray
    motion: np.ndarray
    nonsteady: int
    activation: np.ndarray


def t2star_contrast(maps: TemplateMaps, head: HeadLayers, dropout: np.ndarray) -> np.ndarray:
    """Noise-free baseline BOLD signal in template space, with susceptibility dropout."""
    image = (
        T2S_GM * maps.gm + T2S_WM * maps.wm + T2S_CSF * (maps.csf + head.csf)
        + T2S_SKULL * head.skull + T2S_SCALP * head.scalp + T2S_SOFT * head.soft
    )
    return image * (1.0 - DROPOUT_DEPTH * dropout)


def _global_modulation(rng: np.random.Generator, volumes: int, nonsteady: int) -> np.ndarray:
    """Per-volume factor: quadratic scanner drift, AR(1) physiological fluctuation, non-steady state."""
    tau = np.linspace(-1.0, 1.0, volumes)
    drift = rng.normal(0.0, 0.01) * tau + rng.normal(0.0, 0.006) * (tau**2 - 1.0 / 3.0)
    innovations = rng.normal(0.0, 0.003, volumes)
    physiological = np.zeros(volumes)
    for index in range(1, volumes):
        physiological[index] = 0.6 * physiological[index - 1] + innovations[index]
    saturation = np.ones(volumes)
    saturation[:nonsteady] += NONSTEADY_EXCESS * NONSTEADY_DECAY ** np.arange(nonsteady)
    return (1.0 + drift + physiological) * saturation


def _slice_responses(
    protocol: BoldProtocol, events: pd.DataFrame, gain: float
) -> tuple[np.ndarray, np.ndarray]:
    """Fractional signal change ``(volumes, slices)`` of the occipital and the fusiform region."""
    times = np.arange(protocol.volumes)[:, None] * protocol.repetition_time + np.asarray(protocol.slice_timing)[None, :]
    responses = condition_responses(events, times)
    zero = np.zeros_like(times)  # the start of each sum: an array even without conditions
    occipital = sum((OCCIPITAL_AMPLITUDE[name] * response for name, response in responses.items()), zero)
    fusiform = sum((FUSIFORM_AMPLITUDE[name] * response for name, response in responses.items()), zero)
    return gain * occipital, gain * fusiform


@dataclass(frozen=True)
class _TaskSignal:
    """The native voxels that respond to the task, their gains and their slice's response."""

    voxels: np.ndarray
    occipital_gain: np.ndarray
    fusiform_gain: np.ndarray
    occipital_change: np.ndarray
    fusiform_change: np.ndarray

    def apply(self, image: np.ndarray, baseline: np.ndarray, volume: int) -> None:
        """Set the responding voxels of flat ``image`` to ``baseline`` plus volume ``volume``'s response."""
        image[self.voxels] = baseline[self.voxels] + (
            self.occipital_gain * self.occipital_change[volume]
            + self.fusiform_gain * self.fusiform_change[volume]
        )


def _task_signal(
    native: dict[str, np.ndarray], to_bold: np.ndarray, changes: tuple[np.ndarray, np.ndarray], slices: int
) -> _TaskSignal:
    """Pick the responding native voxels and look up each one's BOLD slice through ``to_bold``."""
    baseline = native["baseline"].reshape(-1)
    voxels = np.flatnonzero((native["occipital"] > 0.01) | (native["fusiform"] > 0.01))
    position = to_bold[:3, :3] @ np.array(np.unravel_index(voxels, native["baseline"].shape)) + to_bold[:3, 3:4]
    slice_index = np.clip(np.rint(position[2]), 0, slices - 1).astype(int)
    return _TaskSignal(
        voxels=voxels,
        occipital_gain=baseline[voxels] * native["occipital"].reshape(-1)[voxels],
        fusiform_gain=baseline[voxels] * native["fusiform"].reshape(-1)[voxels],
        occipital_change=changes[0][:, slice_index],
        fusiform_change=changes[1][:, slice_index],
    )


def _activation_truth(native: dict[str, np.ndarray], reference: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Label the BOLD voxels (at the first volume's position) where a region's weight exceeds 0.3."""
    activation = np.zeros(int(np.prod(shape)), dtype=np.uint8)
    for name, label in ACTIVATION_LABELS.items():
        activation[sample(native[name], reference) > 0.3] = label
    return activation.reshape(shape)


def simulate_bold(
    rng: np.random.Generator,
    native: dict[str, np.ndarray],
    native_affine: np.ndarray,
    events: pd.DataFrame,
    site: Site,
    protocol: BoldProtocol,
) -> BoldRun:
    """Simulate one run from native-space ``baseline``, ``occipital`` and ``fusiform`` maps."""
    shape, affine = protocol.shape, protocol.affine
    offset = rigid_matrix(rng.normal(0.0, [2.0, 2.0, 2.0, 0.03, 0.03, 0.03]))
    motion = simulate_motion(rng, protocol.volumes)
    nonsteady = int(rng.integers(2, 4))
    modulation = _global_modulation(rng, protocol.volumes, nonsteady)
    changes = _slice_responses(protocol, events, float(rng.uniform(0.8, 1.2)))
    coil = bias_field(rng, shape, spacing=16.0, spread=0.07)

    task = _task_signal(native, np.linalg.inv(voxel_map(native_affine, offset, affine)), changes, shape[2])
    baseline = native["baseline"]
    current = baseline.copy()
    volumes = np.empty((*shape, protocol.volumes), dtype=np.int16)
    for volume in range(protocol.volumes):
        task.apply(current.reshape(-1), baseline.reshape(-1), volume)
        matrix = voxel_map(affine, rigid_matrix(motion[volume]) @ offset, native_affine)
        signal = affine_transform(current, matrix, output_shape=shape, order=1, mode="constant", prefilter=False)
        signal *= coil * modulation[volume]
        volumes[..., volume] = to_int16(site.bold_scale * rician(rng, signal, site.bold_noise))
    reference = grid_points(shape, voxel_map(affine, offset, native_affine))
    activation = _activation_truth(native, reference, shape)
    return BoldRun(data=volumes, motion=motion, nonsteady=nonsteady, activation=activation)

"""Acquisition protocol of the example dataset: grids, timing and scanner parameters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BoldProtocol:
    """One BOLD run: a 3 mm LAS grid (axis 2 is the slice axis), timing and the task."""

    task: str = "faces"
    shape: tuple[int, int, int] = (64, 72, 46)
    voxel_mm: float = 3.0
    centre_mm: tuple[float, float, float] = (0.0, -16.0, 14.0)
    volumes: int = 60
    repetition_time: float = 2.0
    echo_time: float = 0.03
    flip_angle: float = 77.0
    total_readout_time: float = 0.0342
    block_seconds: float = 16.0
    rest_seconds: float = 12.0
    first_onset: float = 10.0
    tail_seconds: float = 4.0

    @property
    def affine(self) -> np.ndarray:
        """Voxel-to-world matrix: left-anterior-superior axes (as dcm2niix writes EPI), centred on ``centre_mm``."""
        matrix = np.diag([-self.voxel_mm, self.voxel_mm, self.voxel_mm, 1.0])
        matrix[:3, 3] = np.asarray(self.centre_mm) - matrix[:3, :3] @ ((np.asarray(self.shape) - 1) / 2.0)
        return matrix

    @property
    def blocks(self) -> int:
        """Number of task blocks that fit in the run, leaving ``tail_seconds`` after the last."""
        room = self.volumes * self.repetition_time - self.tail_seconds - self.first_onset - self.block_seconds
        if room < 0:
            return 0
        return int(room // (self.block_seconds + self.rest_seconds)) + 1

    @property
    def slice_timing(self) -> list[float]:
        """Acquisition time (s) of each slice along axis 2: interleaved ascending (0, 2, 4, ..., 1, 3, ...)."""
        count = self.shape[2]
        order = list(range(0, count, 2)) + list(range(1, count, 2))
        step = self.repetition_time / count
        return [round(order.index(index) * step, 4) for index in range(count)]


@dataclass(frozen=True)
class T1wProtocol:
    """MPRAGE parameters written to the T1w sidecar."""

    repetition_time: float = 2.3
    echo_time: float = 0.00298
    inversion_time: float = 0.9
    flip_angle: float = 9.0


BOLD = BoldProtocol()
T1W = T1wProtocol()

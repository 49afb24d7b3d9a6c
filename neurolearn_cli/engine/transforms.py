"""Spatial transforms of world points (RAS mm) with ITK/ANTs pull-back semantics.

The transform found by registering MOVING to FIXED maps a point of FIXED space
to the corresponding point of MOVING space; resampling MOVING onto FIXED's grid
evaluates MOVING at ``T(x)`` for every FIXED voxel centre ``x``.

Batched transforms (an :class:`AffineTransform` holding T matrices, one per
volume of a 4D image, e.g. head motion) map point sets with a leading volume
axis: ``points`` of shape (T, ..., 3) (or (1, ..., 3), broadcast), giving
(T, ..., 3). Unbatched transforms map points of any shape (..., 3).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch

from neurolearn_cli.engine._sampling import sample
from neurolearn_cli.engine.geometry import euler_angles, euler_matrix
from neurolearn_cli.engine.image import Grid, world_grid


class Transform(ABC):
    """A map of world points (RAS mm) from fixed space to moving space."""

    @abstractmethod
    def map_points(self, points: torch.Tensor) -> torch.Tensor:
        """Map points (..., 3) of fixed space to moving space."""

    @abstractmethod
    def inverse(self) -> Transform:
        """The transform mapping moving space back to fixed space."""

    @abstractmethod
    def to(self, device: torch.device) -> Transform:
        """The same transform with its tensors on ``device``."""

    @property
    def n_volumes(self) -> int | None:
        """Number of per-volume transforms held, or None for an unbatched transform."""
        return None

    def select_volumes(self, start: int, stop: int) -> Transform:
        """The transform restricted to volumes ``start:stop`` (itself when unbatched)."""
        return self


class AffineTransform(Transform):
    """World-to-world affine: one (4, 4) matrix, or (T, 4, 4) for one per volume.

    Parameters
    ----------
    matrix : Tensor
        Float64 homogeneous matrices with last row (0, 0, 0, 1), finite and
        invertible; ``y = matrix @ [x, 1]``.
    """

    def __init__(self, matrix: torch.Tensor) -> None:
        matrix = torch.as_tensor(matrix, dtype=torch.float64)
        if matrix.shape[-2:] != (4, 4) or matrix.dim() not in (2, 3):
            raise ValueError(
                f"affine transform must be (4, 4) or (T, 4, 4), got {tuple(matrix.shape)}"
            )
        if not bool(torch.isfinite(matrix).all()):
            raise ValueError("affine transform holds NaN or infinite values")
        bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64, device=matrix.device)
        if not bool(torch.allclose(matrix[..., 3, :], bottom.expand_as(matrix[..., 3, :]))):
            raise ValueError("affine transform's last row is not (0, 0, 0, 1)")
        if bool((torch.linalg.det(matrix[..., :3, :3]).abs() < 1e-12).any()):
            raise ValueError("affine transform is singular")
        self.matrix = matrix

    @classmethod
    def identity(cls, device: torch.device, n_volumes: int | None = None) -> AffineTransform:
        """The identity (batched with ``n_volumes`` copies when given)."""
        eye = torch.eye(4, dtype=torch.float64, device=device)
        return cls(eye if n_volumes is None else eye.repeat(n_volumes, 1, 1))

    @classmethod
    def rigid(
        cls,
        rotations_rad: torch.Tensor,
        translations_mm: torch.Tensor,
        center_mm: torch.Tensor | Sequence[float] = (0.0, 0.0, 0.0),
    ) -> AffineTransform:
        """Rigid transform ``y = R (x - c) + c + t`` with ``R = Rx(a) @ Ry(b) @ Rz(c)``.

        ``rotations_rad`` (..., 3) are the angles (a, b, c) about the x, y, z
        (RAS) axes in radians (:func:`~neurolearn_cli.engine.geometry.euler_matrix`);
        ``translations_mm`` (..., 3) the translations;
        ``center_mm`` the rotation centre. A leading axis gives a batched
        transform. These six numbers per volume are fMRIPrep's ``rot_x, rot_y,
        rot_z, trans_x, trans_y, trans_z`` confound columns.
        """
        rot = torch.as_tensor(rotations_rad, dtype=torch.float64)
        trans = torch.as_tensor(translations_mm, dtype=torch.float64, device=rot.device)
        centre = torch.as_tensor(center_mm, dtype=torch.float64, device=rot.device)
        r = euler_matrix(rot)
        matrix = torch.zeros(rot.shape[:-1] + (4, 4), dtype=torch.float64, device=rot.device)
        matrix[..., :3, :3] = r
        matrix[..., :3, 3] = trans + centre - (r @ centre.unsqueeze(-1)).squeeze(-1)
        matrix[..., 3, 3] = 1.0
        return cls(matrix)

    def rigid_parameters(
        self, center_mm: torch.Tensor | Sequence[float] = (0.0, 0.0, 0.0)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Angles (..., 3) and translations (..., 3) of :meth:`rigid`, assuming a rigid matrix."""
        r = self.matrix[..., :3, :3]
        centre = torch.as_tensor(center_mm, dtype=torch.float64, device=r.device)
        angles = euler_angles(r)
        trans = self.matrix[..., :3, 3] - centre + (r @ centre.unsqueeze(-1)).squeeze(-1)
        return angles, trans

    @property
    def n_volumes(self) -> int | None:
        return None if self.matrix.dim() == 2 else int(self.matrix.shape[0])

    def select_volumes(self, start: int, stop: int) -> AffineTransform:
        return self if self.matrix.dim() == 2 else AffineTransform(self.matrix[start:stop])

    def map_points(self, points: torch.Tensor) -> torch.Tensor:
        matrix = self.matrix.to(device=points.device, dtype=points.dtype)
        if matrix.dim() == 3:
            if points.dim() < 2 or points.shape[0] not in (1, matrix.shape[0]):
                raise ValueError(
                    f"{matrix.shape[0]} per-volume transforms cannot map points of shape {tuple(points.shape)}",
                )
            matrix = matrix.view(matrix.shape[0], *([1] * (points.dim() - 2)), 4, 4)
        linear, offset = matrix[..., :3, :3], matrix[..., :3, 3]
        return (linear @ points.unsqueeze(-1)).squeeze(-1) + offset

    def inverse(self) -> AffineTransform:
        return AffineTransform(torch.linalg.inv(self.matrix))

    def to(self, device: torch.device) -> AffineTransform:
        return AffineTransform(self.matrix.to(device))


def _check_field(field: torch.Tensor, grid: Grid, what: str) -> torch.Tensor:
    if tuple(field.shape) != (*grid.shape, 3):
        raise ValueError(
            f"{what} must have shape {(*grid.shape, 3)}, got {tuple(field.shape)}"
        )
    if not bool(torch.isfinite(field).all()):
        raise ValueError(f"{what} holds NaN or infinite values")
    return field.to(device=grid.device, dtype=torch.float32)


def _field_at(displacement: torch.Tensor, grid: Grid, points: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of a (X, Y, Z, 3) field at world points (..., 3); zero outside."""
    inv = torch.linalg.inv(grid.affine).to(points.dtype)
    voxel = points @ inv[:3, :3].T + inv[:3, 3]
    flat = voxel.reshape(1, -1, 1, 1, 3)
    volume = displacement.permute(3, 0, 1, 2).unsqueeze(0)
    values = sample(volume, flat, mode="linear", fill=0.0)
    return values[0, :, :, 0, 0].T.reshape(points.shape).to(points.dtype)


class DisplacementField(Transform):
    """Dense displacement ``u`` (X, Y, Z, 3), RAS mm, on ``grid``: ``T(x) = x + u(x)``.

    ``u`` is interpolated linearly and is zero outside the grid (ITK's
    DisplacementFieldTransform).
    """

    def __init__(self, displacement: torch.Tensor, grid: Grid) -> None:
        self.grid = grid
        self.displacement = _check_field(displacement, grid, "displacement field")

    def map_points(self, points: torch.Tensor) -> torch.Tensor:
        return points + _field_at(self.displacement, self.grid, points)

    def inverse(self, iterations: int = 50, tolerance_mm: float = 1e-4) -> DisplacementField:
        """Inverse field on the same grid by fixed-point iteration ``v = -u(x + v)``.

        Converges when the field is smooth (``|grad u| < 1``); iterates until the
        largest update is below ``tolerance_mm`` or ``iterations`` are done.
        """
        points = world_grid(self.grid)
        inverse = -self.displacement
        for _ in range(iterations):
            update = -_field_at(self.displacement, self.grid, points + inverse)
            change = float((update - inverse).abs().max())
            inverse = update
            if change < tolerance_mm:
                break
        return DisplacementField(inverse, self.grid)

    def to(self, device: torch.device) -> DisplacementField:
        return DisplacementField(self.displacement.to(device), self.grid.to(device))


class VelocityField(Transform):
    """Stationary velocity field ``v`` (X, Y, Z, 3), RAS mm, on ``grid``; ``T = exp(v)``."""

    def __init__(self, velocity: torch.Tensor, grid: Grid, steps: int = 7) -> None:
        self.grid = grid
        self.velocity = _check_field(velocity, grid, "velocity field")
        self.steps = steps
        self._field: DisplacementField | None = None

    def exp(self, steps: int | None = None) -> DisplacementField:
        """Displacement field of ``exp(v)`` by scaling and squaring (``2**steps`` sub-steps)."""
        steps = self.steps if steps is None else steps
        points = world_grid(self.grid)
        disp = self.velocity / (2.0**steps)
        for _ in range(steps):
            disp = disp + _field_at(disp, self.grid, points + disp)
        return DisplacementField(disp, self.grid)

    def map_points(self, points: torch.Tensor) -> torch.Tensor:
        if self._field is None:
            self._field = self.exp()
        return self._field.map_points(points)

    def inverse(self) -> VelocityField:
        return VelocityField(-self.velocity, self.grid, self.steps)

    def to(self, device: torch.device) -> VelocityField:
        return VelocityField(self.velocity.to(device), self.grid.to(device), self.steps)


class Chain(Transform):
    """Transforms in ANTs command-line order: ``Chain([t1, ..., tn])`` maps ``x`` to ``tn(...t1(x))``.

    Same as ``antsApplyTransforms -t t1 ... -t tn``: SyN's
    ``Chain([warp, affine])`` equals ``-t 1Warp.nii.gz -t 0GenericAffine.mat``.
    """

    def __init__(self, transforms: Sequence[Transform]) -> None:
        if not transforms:
            raise ValueError("a transform chain needs at least one transform")
        self.transforms = list(transforms)
        counts = {n for t in self.transforms if (n := t.n_volumes) is not None}
        if len(counts) > 1:
            raise ValueError(
                f"per-volume transforms disagree on the number of volumes: {sorted(counts)}"
            )

    @property
    def n_volumes(self) -> int | None:
        counts = {t.n_volumes for t in self.transforms} - {None}
        return counts.pop() if counts else None

    def select_volumes(self, start: int, stop: int) -> Chain:
        return Chain([t.select_volumes(start, stop) for t in self.transforms])

    def map_points(self, points: torch.Tensor) -> torch.Tensor:
        for transform in self.transforms:
            points = transform.map_points(points)
        return points

    def inverse(self) -> Chain:
        return Chain([t.inverse() for t in reversed(self.transforms)])

    def to(self, device: torch.device) -> Chain:
        return Chain([t.to(device) for t in self.transforms])


def as_matrix(transform: Transform | None, device: torch.device) -> torch.Tensor | None:
    """The single (4, 4) or (T, 4, 4) float64 matrix equal to ``transform``, or None.

    None when the transform holds a non-linear part. Identity for ``None``.
    """
    if transform is None:
        return torch.eye(4, dtype=torch.float64, device=device)
    if isinstance(transform, AffineTransform):
        return transform.matrix.to(device)
    if isinstance(transform, Chain):
        total = torch.eye(4, dtype=torch.float64, device=device)
        for part in transform.transforms:
            matrix = as_matrix(part, device)
            if matrix is None:
                return None
            total = matrix @ total
        return total
    return None


__all__ = [
    "AffineTransform",
    "Chain",
    "DisplacementField",
    "Transform",
    "VelocityField",
    "as_matrix",
]

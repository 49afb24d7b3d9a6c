"""Phase unwrapping by the Laplacian method (Schofield and Zhu, 2003).

The Laplacian of the true phase follows from the wrapped one without any
2 pi ambiguity: ``lap(phi) = cos(phi) lap(sin phi) - sin(phi) lap(cos phi)``.
Inverting the Laplacian in the frequency domain (mirror-extended volume, so
the boundary condition is Neumann) gives a smooth estimate ``phi_L`` up to a
constant; each voxel then keeps its measured phase plus the multiple of 2 pi
that brings it closest to ``phi_L``. Last, the whole map is shifted by the
multiple of 2 pi that puts its median inside the mask in (-pi, pi].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

TWO_PI = 2.0 * torch.pi


def _mirror(volume: torch.Tensor) -> torch.Tensor:
    """Even extension along the three axes: shape (2X, 2Y, 2Z)."""
    for axis in range(3):
        volume = torch.cat([volume, volume.flip(axis)], dim=axis)
    return volume


def _laplacian_symbol(
    shape: Sequence[int], spacing: Sequence[float], device: torch.device
) -> torch.Tensor:
    """Fourier symbol of the discrete 7-point Laplacian: ``-sum_i (2 - 2 cos(2 pi k_i / N_i)) / h_i^2``."""
    symbol = torch.zeros(shape, dtype=torch.float32, device=device)
    for axis, (n, h) in enumerate(zip(shape, spacing, strict=True)):
        k = torch.arange(n, dtype=torch.float32, device=device)
        term = (2.0 - 2.0 * torch.cos(TWO_PI * k / n)) / (h * h)
        view = [1, 1, 1]
        view[axis] = n
        symbol = symbol - term.view(view)
    return symbol


def laplacian_unwrap(
    wrapped: torch.Tensor, mask: torch.Tensor, spacing: Sequence[float]
) -> torch.Tensor:
    """Unwrapped phase (rad, float32) of ``wrapped`` (X, Y, Z) in [-pi, pi), valid inside ``mask``.

    Outside the mask the phase is treated as zero (noise there would
    otherwise leak into the Laplacian).
    """
    shape = tuple(int(n) for n in wrapped.shape)
    phase = torch.where(
        mask.bool(), wrapped.to(torch.float32), torch.zeros_like(wrapped, dtype=torch.float32)
    )
    extended = [2 * n for n in shape]
    symbol = _laplacian_symbol(extended, spacing, wrapped.device)[..., : shape[2] + 1]

    def solve(volume: torch.Tensor, multiplier: torch.Tensor) -> torch.Tensor:
        spectrum = torch.fft.rfftn(_mirror(volume)) * multiplier
        return torch.fft.irfftn(spectrum, s=extended)[: shape[0], : shape[1], : shape[2]]

    true_laplacian = torch.cos(phase) * solve(torch.sin(phase), symbol) - torch.sin(phase) * solve(
        torch.cos(phase), symbol
    )
    inverse = torch.where(
        symbol == 0, torch.zeros_like(symbol), 1.0 / torch.where(symbol == 0, 1.0, symbol)
    )
    smooth = solve(true_laplacian, inverse)
    inside = mask.bool()
    offset = torch.remainder(phase - smooth + torch.pi, TWO_PI) - torch.pi
    smooth = smooth + offset[inside].median()
    unwrapped = phase + TWO_PI * torch.round((smooth - phase) / TWO_PI)
    unwrapped = unwrapped - TWO_PI * torch.round(unwrapped[inside].median() / TWO_PI)
    return unwrapped.to(torch.float32)

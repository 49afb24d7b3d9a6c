"""Otsu's threshold of image intensities: the automatic foreground cut the stages share."""

from __future__ import annotations

import torch


def otsu_threshold(values: torch.Tensor, bins: int = 256) -> float:
    """Otsu's threshold of ``values``: the histogram cut maximising ``w0 w1 (m0 - m1)^2``.

    Parameters
    ----------
    values : Tensor
        Intensities, any shape (e.g. the voxels of a volume or of a mask).
    bins : int
        Histogram bins between the minimum and the maximum.

    Returns
    -------
    float
        The upper edge of the last bin of the lower class (the minimum for constant values).
    """
    values = values.reshape(-1)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return low
    hist = torch.histc(values.to(torch.float32), bins=bins, min=low, max=high).to(torch.float64)
    edges = torch.linspace(low, high, bins + 1, dtype=torch.float64, device=values.device)
    centres = 0.5 * (edges[1:] + edges[:-1])
    weight = hist.cumsum(0)
    mass = (hist * centres).cumsum(0)
    w0, w1 = weight[:-1], weight[-1] - weight[:-1]
    m0 = mass[:-1] / w0.clamp(min=1)
    m1 = (mass[-1] - mass[:-1]) / w1.clamp(min=1)
    between = torch.where((w0 > 0) & (w1 > 0), w0 * w1 * (m0 - m1) ** 2, torch.zeros_like(w0))
    return float(edges[int(between.argmax()) + 1])

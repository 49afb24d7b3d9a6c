"""What the scanner adds to every image: magnitude (Rician) noise and int16 storage."""

from __future__ import annotations

import numpy as np


def rician(rng: np.random.Generator, signal: np.ndarray, sigma: float) -> np.ndarray:
    """Magnitude of ``signal`` plus complex Gaussian noise of standard deviation ``sigma`` per channel."""
    real = rng.standard_normal(signal.shape, dtype=np.float32)
    imaginary = rng.standard_normal(signal.shape, dtype=np.float32)
    return np.hypot(signal + sigma * real, sigma * imaginary)


def to_int16(image: np.ndarray) -> np.ndarray:
    """Round and clip to the int16 range, as scanners store magnitude images."""
    return np.clip(np.rint(image), 0, np.iinfo(np.int16).max).astype(np.int16)

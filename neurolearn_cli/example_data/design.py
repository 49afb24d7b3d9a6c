"""The block-design task: events, the canonical HRF and each condition's expected response."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import gamma

from neurolearn_cli.example_data.protocol import BoldProtocol

CONDITIONS: tuple[str, str] = ("face", "scrambled")
_DT = 0.1


def draw_events(rng: np.random.Generator, protocol: BoldProtocol) -> pd.DataFrame:
    """Alternating face and scrambled-face blocks; which comes first is random.

    Returns a BIDS events table (onset, duration in s, trial_type), onsets from
    the start of the first volume.
    """
    first = int(rng.integers(2))
    period = protocol.block_seconds + protocol.rest_seconds
    return pd.DataFrame(
        {
            "onset": [protocol.first_onset + block * period for block in range(protocol.blocks)],
            "duration": [protocol.block_seconds] * protocol.blocks,
            "trial_type": [CONDITIONS[(first + block) % 2] for block in range(protocol.blocks)],
        }
    )


def canonical_hrf(times: np.ndarray) -> np.ndarray:
    """SPM's double-gamma HRF (peak near 5 s, undershoot near 15 s, ratio 1/6), unit sum."""
    response = gamma.pdf(times, 6.0) - gamma.pdf(times, 16.0) / 6.0
    return response / response.sum()


def condition_responses(events: pd.DataFrame, times: np.ndarray) -> dict[str, np.ndarray]:
    """HRF-convolved boxcar of each condition at ``times`` (any shape, s); a long block plateaus at 1."""
    end = float(times.max()) + 32.0
    fine = np.arange(0.0, end, _DT)
    kernel = canonical_hrf(np.arange(0.0, 32.0, _DT))
    responses = {}
    for condition in CONDITIONS:
        boxcar = np.zeros_like(fine)
        for onset, duration in events.loc[events.trial_type == condition, ["onset", "duration"]].to_numpy():
            boxcar[(fine >= onset) & (fine < onset + duration)] = 1.0
        convolved = np.convolve(boxcar, kernel)[: fine.size]
        responses[condition] = np.interp(times, fine, convolved)
    return responses

"""The weights a report shows: largest by magnitude, never a feature that no fold kept."""

from __future__ import annotations

import pandas as pd

from neurolearn_cli.mvpa.weights import largest_weights


def test_largest_weights_by_magnitude_without_zeros() -> None:
    weights = pd.DataFrame({"feature": list("abcde"), "weight": [0.1, -0.5, 0.0, 0.3, 0.0],
                            "std": [0.01] * 5, "kind": ["coefficient"] * 5})
    assert largest_weights(weights, top=2)["feature"].tolist() == ["b", "d"]
    assert largest_weights(weights)["feature"].tolist() == ["b", "d", "a"]

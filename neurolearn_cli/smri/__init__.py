"""Structural MRI preprocessing: conform, initialize, segment, mask, normalize, morphometry."""

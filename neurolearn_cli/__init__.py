"""neurolearn: a BIDS-App for torch-accelerated MRI preprocessing, QC and pattern analysis."""

__version__ = "0.1.0"

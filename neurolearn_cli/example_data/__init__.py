"""Simulated, download-free example BIDS dataset (``neurolearn example-data``).

T1w and task BOLD images for any number of participants, built from nilearn's
bundled MNI152 template with a synthetic head, per-participant warps, two
sites, and a patient group with regional atrophy; seeded and byte-reproducible.
Clinical perturbations of any scan, for the tests and benchmarks: a planted
lesion with its mask (:mod:`~neurolearn_cli.example_data.lesion`) and
thick-slice copies (:mod:`~neurolearn_cli.example_data.reslice`).
"""

from neurolearn_cli.example_data.writer import write_example_dataset

__all__ = ["write_example_dataset"]

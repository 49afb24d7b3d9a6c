"""neurolearn: a BIDS-App for torch-accelerated MRI preprocessing, QC and pattern analysis."""

import os

# OpenMP threads that spin while idle cost up to 20x CPU per small torch operation on a
# busy node (shared SLURM nodes, several participants at once); set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

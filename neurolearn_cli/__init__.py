"""neurolearn: a BIDS-App for torch-accelerated MRI preprocessing, QC and pattern analysis."""

import os

# Transparent huge pages for torch's large CPU buffers: a 0.7 mm T1w map is 160 MB, and
# faulting it in 4 KB pages on every new temporary cost qc a fifth of its time.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

__version__ = "0.1.0"

"""Within-participant decoding (``mode: within``): trial- or block-wise LSS estimates, decoded across blocks.

As nilearn's Decoder, on our fmri outputs: each trial (or block) of a run's
``events.tsv`` gets its own least-squares-separate GLM estimate per voxel of a
mask; a classifier is cross-validated with folds that never split a block
(leave one block, or one run, out) and tested by permutations that shuffle
the labels between blocks. Entry point: :func:`neurolearn_cli.mvpa.decoding.run.run_decoding`.
"""

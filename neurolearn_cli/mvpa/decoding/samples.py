"""LSS estimates of every sample of a participant's runs, with their run, block and condition."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from neurolearn_cli.engine.image import Grid
from neurolearn_cli.errors import InputError
from neurolearn_cli.mvpa.decoding.confounds import confound_columns, nuisance_matrix
from neurolearn_cli.mvpa.decoding.events import samples_from_events
from neurolearn_cli.mvpa.decoding.inputs import RunFiles, load_bold, load_mask, read_table
from neurolearn_cli.mvpa.decoding.lss import design_columns, lss_estimates
from neurolearn_cli.mvpa.decoding.spec import DecodingSpec

LOGGER = logging.getLogger("neurolearn.mvpa")


@dataclass(frozen=True)
class SampleSet:
    """Estimates (``N x V`` voxels of the mask), the samples table, the mask and its grid.

    ``table`` has ``run``, ``block`` (numbered across runs), ``onset``,
    ``duration`` and ``condition`` columns, one row per sample.
    """

    estimates: np.ndarray
    table: pd.DataFrame
    mask: torch.Tensor
    grid: Grid
    confounds: list[str]


def _run_estimates(run: RunFiles, spec: DecodingSpec, data: torch.Tensor) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """The samples of one run and their LSS estimates from its masked ``T x V`` data."""
    samples = samples_from_events(read_table(run.events), spec.target.column, spec.samples, run.events)
    table = read_table(run.confounds)
    columns = confound_columns(list(table.columns), spec.glm.confounds, run.confounds)
    nuisance = nuisance_matrix(table, columns, data.shape[0], run.confounds)
    frame_times = (np.arange(data.shape[0]) + spec.glm.slice_time_ref) * run.repetition_time
    if samples["onset"].max() >= frame_times[-1] + run.repetition_time:
        raise InputError(run.events, f"events start after the run's last volume ({data.shape[0]} volumes)")
    regressors, nuisance_design = design_columns(samples, frame_times, nuisance, hrf=spec.glm.hrf,
                                                 high_pass=spec.glm.high_pass)
    with torch.no_grad():
        estimates = lss_estimates(data, regressors, nuisance_design)
    return samples, estimates.cpu().numpy().astype(np.float64), columns


def estimate_samples(runs: list[RunFiles], spec: DecodingSpec, device: torch.device) -> SampleSet:
    """LSS estimates of each run's samples within the spec's mask (taken on the first run's grid).

    Raises
    ------
    InputError
        Runs on different grids, or bad events, confounds or mask.
    ValueError
        No run (:func:`~neurolearn_cli.mvpa.decoding.inputs.find_runs` finds at least one).
    """
    if not runs:
        raise ValueError("estimate_samples needs at least one run")
    bold = load_bold(runs[0].bold, device)
    grid, mask = bold.grid, load_mask(spec.mask, bold.grid)
    tables: list[pd.DataFrame] = []
    estimates: list[np.ndarray] = []
    columns: list[str] = []
    offset = 0
    for index, run in enumerate(runs):
        if index > 0:
            bold = load_bold(run.bold, device)
            if bold.grid != grid:
                raise InputError(run.bold, f"not on the grid of {runs[0].bold.name}")
        data = bold.data[mask].T.contiguous()
        del bold
        samples, values, columns = _run_estimates(run, spec, data)
        samples.insert(0, "run", index)
        samples["block"] += offset
        offset = int(samples["block"].max()) + 1
        tables.append(samples)
        estimates.append(values)
        LOGGER.info("%s: %d samples x %d voxels estimated", run.bold.name, len(samples), values.shape[1])
    return SampleSet(np.vstack(estimates), pd.concat(tables, ignore_index=True), mask, grid, columns)

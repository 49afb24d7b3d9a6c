"""The mvpa stage at group level, run by :func:`neurolearn_cli.run.run_group` for the bare form and ``neurolearn mvpa``."""

from __future__ import annotations

from neurolearn_cli.dataset.plan import DatasetPlan
from neurolearn_cli.stages import StageContext


def run_group(dataset: DatasetPlan, context: StageContext) -> None:
    """Build the analysis spec from the run's options and run it, reading features from OUTPUT_DIR by default.

    The options given override the spec file's fields; ``--seed`` does only
    when given, else the spec's own seed applies. The analysis logs its result,
    and ``logs/CITATION.md`` is rewritten to include it.

    Raises
    ------
    InputError
        No ``participants.tsv`` in the BIDS folder, or a bad feature file.
    SpecError
        A spec field that does not fit the data, naming the spec file (or "command line").
    """
    from neurolearn_cli.errors import InputError, SpecError
    from neurolearn_cli.mvpa.analysis import run_analysis
    from neurolearn_cli.mvpa.shorthand import spec_from_config
    from neurolearn_cli.qc.workflow import write_citation

    config = context.config
    if dataset.participants_table is None:
        raise InputError(config.bids_dir / "participants.tsv", "file not found (mvpa reads the target from it)")
    spec = spec_from_config(config)
    try:
        run_analysis(spec, config.bids_dir, config.output_dir, device=config.device, n_jobs=config.nprocs)
    except SpecError as error:
        raise error.located(config.spec or "command line") from None
    write_citation(context)

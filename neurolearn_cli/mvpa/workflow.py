"""The mvpa stage of the bare BIDS-App form at group level (``--spec`` or ``--features``/``--target``)."""

from __future__ import annotations

from neurolearn_cli.dataset.plan import DatasetPlan
from neurolearn_cli.stages import StageContext


def run_group(dataset: DatasetPlan, context: StageContext) -> None:
    """Build the analysis spec from the run's options and run it on the derivatives in OUTPUT_DIR."""
    from neurolearn_cli.errors import SpecError
    from neurolearn_cli.mvpa.analysis import run_analysis
    from neurolearn_cli.mvpa.shorthand import build_spec

    config = context.config
    spec = build_spec(config.spec, features=config.features, target=config.target, model=config.model, cv=config.cv,
                      group_by=config.group_by, permutations=config.permutations, name=config.name, seed=config.seed)
    try:
        result = run_analysis(spec, config.bids_dir, config.output_dir, device=config.device, n_jobs=config.nprocs)
    except SpecError as error:
        raise error.located(config.spec or "command line") from None
    summary = result.results
    context.log.info("mvpa %s: %s = %.3f (permutation p = %s); outputs in %s", spec.name, summary["metric"],
                     summary["mean"], summary["permutation_p"], result.folder)

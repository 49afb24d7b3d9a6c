"""Multivariate pattern analysis of participants: spec, features, nested CV, reports.

Entry points: :func:`neurolearn_cli.mvpa.spec.load_spec` and
:func:`neurolearn_cli.mvpa.analysis.run_analysis`. Submodules are imported on
demand, so reading a spec does not load torch or matplotlib.
"""

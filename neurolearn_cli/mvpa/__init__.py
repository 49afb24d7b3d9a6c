"""Multivariate pattern analysis: between participants (group) and within each participant (decoding).

Entry points: :func:`neurolearn_cli.mvpa.shorthand.build_spec` and
:func:`neurolearn_cli.mvpa.analysis.run_analysis` for group analyses;
:func:`neurolearn_cli.mvpa.decoding.spec.load_decoding_spec` and
:func:`neurolearn_cli.mvpa.decoding.run.run_decoding` for decoding. Submodules
are imported on demand, so reading a spec does not load torch or matplotlib.
"""

"""Methods boilerplate and run summaries, fMRIPrep-style, from what a run actually did.

:mod:`~neurolearn_cli.boilerplate.gather` reads the facts (the edge),
:mod:`~neurolearn_cli.boilerplate.methods` turns them into text (pure), one
module per stage writes that stage's section.
"""

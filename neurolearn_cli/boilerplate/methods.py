"""fMRIPrep's kind of methods boilerplate, for everything a run did: a pure function of its facts.

:func:`methods` turns :class:`~neurolearn_cli.boilerplate.facts.RunFacts`
into a :class:`~neurolearn_cli.boilerplate.document.Boilerplate`: an opening
paragraph (software, versions, device), then one section per stage that ran
(smri, surfaces, fmri, qc, each mvpa analysis), each naming what was done with which
parameters and, for a step that was skipped, why; the references are
numbered in the order the text cites them. The text may be copied into a
manuscript unchanged, as fMRIPrep's.
"""

from __future__ import annotations

from neurolearn_cli.boilerplate.analysis import analysis_section
from neurolearn_cli.boilerplate.anatomical import smri_section
from neurolearn_cli.boilerplate.citations import Citations
from neurolearn_cli.boilerplate.document import Boilerplate, Section
from neurolearn_cli.boilerplate.facts import RunFacts
from neurolearn_cli.boilerplate.functional import fmri_section
from neurolearn_cli.boilerplate.quality import qc_section
from neurolearn_cli.boilerplate.surfaces import surfaces_section


def _software(facts: RunFacts, cite: Citations) -> Section:
    software = facts.software
    libraries = ", ".join(f"{name} {version}" for name, version in sorted(software.libraries.items()))
    stages = [name for name, ran in (("structural preprocessing (smri)", facts.anat),
                                     ("cortical surfaces (surfaces)", facts.surfaces),
                                     ("functional preprocessing (fmri)", facts.bold),
                                     ("quality control (qc)", facts.qc_t1w or facts.qc_bold),
                                     ("pattern analysis (mvpa)", facts.analyses)) if ran]
    text = (f"Results included here come from processing performed with neurolearn {software.version}, whose "
            f"image computations run in PyTorch {cite('pytorch')} on the {software.device}"
            + (f" (libraries: {libraries})" if libraries else "") + ". "
            + (f"Stages that ran: {', '.join(stages)}." if stages else "No stage produced outputs."))
    return Section("Software", (text,))


def methods(facts: RunFacts) -> Boilerplate:
    """The methods text of a run: a section per stage that ran, and the references it cites."""
    cite = Citations()
    sections = [_software(facts, cite)]
    if facts.anat:
        sections.append(smri_section(facts.anat, cite))
    if facts.surfaces:
        sections.append(surfaces_section(facts.surfaces, cite))
    if facts.bold:
        sections.append(fmri_section(facts.bold, cite))
    if facts.qc_t1w or facts.qc_bold:
        sections.append(qc_section(facts.qc_t1w, facts.qc_bold, cite))
    sections += [analysis_section(analysis, cite) for analysis in facts.analyses]
    return Boilerplate(tuple(sections), cite.references())

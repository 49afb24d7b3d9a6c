"""The methods paragraphs of the fmri stage (functional preprocessing), from its facts.

Runs that were treated alike are described together; where runs differ (a
fieldmap for one, none for another) each outcome names its runs and, for a
skipped step, the fmri stage's own reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from neurolearn_cli.boilerplate.citations import Citations
from neurolearn_cli.boilerplate.document import Section
from neurolearn_cli.boilerplate.facts import BoldFacts
from neurolearn_cli.boilerplate.wording import group_by, listing, plural, runs_phrase, spread

#: Words that tie one of the fmri stage's notes to the step it is about.
SDC_WORDS = ("distortion", "fieldmap")
STC_WORDS = ("slice-timing", "slicetiming", "slice timing")
#: The SDC method named in the sidecars, and the reference each cites.
SDC_REFERENCES = {"phasediff fieldmap": "fieldmap", "reverse phase-encoding EPI pair (PEPOLAR)": "pepolar"}


def notes_about(run: BoldFacts, words: Sequence[str]) -> tuple[str, ...]:
    """The run's notes that mention any of ``words`` (case-insensitive)."""
    return tuple(note for note in run.notes if any(word in note.lower() for word in words))


def reason(notes: Sequence[str]) -> str:
    """The notes as one reason (``a; b``), or that none was recorded."""
    return "; ".join(notes) if notes else "no reason was recorded"


#: The clause every SDC note repeats; the summary and the methods text already say that SDC was not applied.
_SDC_SKIPPED = re.compile(r"(susceptibility )?distortion correction skipped[:,]?\s*", re.IGNORECASE)


def sdc_reason(run: BoldFacts) -> str:
    """Why distortion correction was not applied to ``run``, without repeating that it was not."""
    notes = [_SDC_SKIPPED.sub("", note).strip(" :,()") for note in notes_about(run, SDC_WORDS)]
    return reason([note for note in notes if note])


def _names(runs: Sequence[BoldFacts]) -> list[str]:
    return [run.name for run in runs]


def _found(runs: Sequence[BoldFacts]) -> str:
    participants = sorted({run.participant for run in runs})
    who = (f"participant {participants[0]}" if len(participants) == 1
           else f"the {len(participants)} participants")
    which = "the BOLD run" if len(runs) == 1 else f"each of the {plural(len(runs), 'BOLD run')}"
    return f"For {which} found for {who}, the following preprocessing was performed."


HOW_NONSTEADY = {
    "detected": "detected as the initial run of outliers of the global signal (modified z-score above 3.5, as "
                "fMRIPrep does) in",
    "--dummy-scans": "set by --dummy-scans in",
}


def _nonsteady(runs: Sequence[BoldFacts]) -> str:
    found = []
    for how, group in group_by(runs, lambda run: run.nonsteady_from).items():
        counts = [float(run.nonsteady) for run in group if run.nonsteady is not None]
        words = HOW_NONSTEADY.get(str(how), "counted (how was not recorded) in")
        found.append(f"{words} {runs_phrase(_names(group), len(runs))}" + (f" ({spread(counts)}{' per run' if len(runs) > 1 else ''})" if counts else ""))
    return (f"Non-steady-state volumes at the start of each run were {listing(found)}; they were left out of "
            "the reference, CompCor and the cosine basis, and flagged by non_steady_state_outlier regressors.")


def _slice_timing(runs: Sequence[BoldFacts], cite: Citations) -> str:
    sentences = []
    applied = [run for run in runs if run.slice_timing]
    if applied:
        times = [run.slice_time_s for run in applied if run.slice_time_s is not None]
        to = f" to {spread(times, unit='s')} after the start of each volume" if times else ""
        sentences.append(f"Slice-timing correction (Fourier interpolation, as AFNI's 3dTshift {cite('afni')}) "
                         f"shifted every slice{to} in {runs_phrase(_names(applied), len(runs))}.")
    skipped = [run for run in runs if run.slice_timing is False]
    for why, group in group_by(skipped, lambda run: reason(notes_about(run, STC_WORDS))).items():
        sentences.append(f"Slice-timing correction was not applied to {runs_phrase(_names(group), len(runs))} "
                         f"({why}).")
    return " ".join(sentences)


def _distortion(runs: Sequence[BoldFacts], cite: Citations) -> str:
    sentences = []
    corrected = [run for run in runs if run.sdc_method not in (None, "none")]
    for method, group in group_by(corrected, lambda run: str(run.sdc_method)).items():
        reference = f" {cite(SDC_REFERENCES[method])}" if method in SDC_REFERENCES else ""
        sentences.append(f"Susceptibility distortions were estimated from a {method}{reference} and corrected, "
                         f"as a voxel shift along the phase-encoding axis, in {runs_phrase(_names(group), len(runs))}.")
    skipped = [run for run in runs if run.sdc_method == "none"]
    for why, group in group_by(skipped, sdc_reason).items():
        sentences.append(f"Susceptibility distortion correction was not applied to "
                         f"{runs_phrase(_names(group), len(runs))} ({why}).")
    return " ".join(sentences)


def _coregistration(runs: Sequence[BoldFacts], cite: Citations) -> str:
    text = (f"The BOLD reference{' (after distortion correction)' if any(r.sdc_method not in (None, 'none') for r in runs) else ''} "
            "was co-registered to the T1w reference with six degrees of freedom: normalized mutual information "
            f"first, then boundary-based registration (BBR) {cite('bbr')} on the white-matter surface, kept only "
            "when it lowered its own cost and stayed close to the first result, as fMRIPrep does.")
    methods = {"bbr": "BBR was kept", "nmi": "the mutual-information result was kept (BBR rejected)"}
    for method, group in group_by(runs, lambda run: run.coregistration_method).items():
        if method is None:
            continue
        costs = [run.coregistration_cost for run in group if run.coregistration_cost is not None]
        cost = f", final cost {spread(costs)}" if costs else ""
        text += f" For {runs_phrase(_names(group), len(runs))}, {methods.get(method, method)}{cost}."
    return text


def _resampling(runs: Sequence[BoldFacts]) -> str:
    spaces = sorted({space for run in runs for space in run.spaces})
    where = listing(spaces) if spaces else "the output spaces"
    return (f"The BOLD series were resampled into {where} in a single windowed-sinc interpolation per volume, "
            "composing head motion, distortion correction (where applied), co-registration and, for template "
            "spaces, the anatomical normalization.")


def _surfaces(runs: Sequence[BoldFacts], cite: Citations) -> str:
    """How the series were sampled on the cortical surfaces, for the runs that have surface outputs."""
    sampled = [run for run in runs if run.surfaces is not None]
    if not sampled:
        return ""
    spaces = sorted({space for run in sampled if run.surfaces for space in run.surfaces.spaces})
    depths = sorted({len(run.surfaces.depths) for run in sampled if run.surfaces and run.surfaces.depths})
    at = f"at {listing([str(d) for d in depths])} evenly spaced depths" if depths else "at several depths"
    text = (f"The BOLD series of {runs_phrase(_names(sampled), len(runs))} were also sampled on the cortical "
            f"surfaces made by the surfaces stage, {at} from the white to the pial surface, and the depths "
            "averaged at each vertex, as FreeSurfer's mri_vol2surf (--projfrac-avg 0 1 0.2) does in fMRIPrep "
            f"{cite('fmriprep')}; the raw series was interpolated once (trilinear) at these points, through the same "
            "head-motion, distortion-correction and co-registration transforms as the volumes. Samples outside the brain mask "
            "or the field of view were left out, and so were those whose temporal coefficient of variation, "
            "divided by its local mean over the surface, exceeded the mean of that ratio by half a standard "
            "deviation and 1 by 5 % (the HCP's goodvoxels criterion), unless all of a vertex's samples were; a "
            "vertex with no sample in the brain is missing (NaN).")
    kept = [run.surfaces.kept_fraction * 100 for run in sampled
            if run.surfaces is not None and run.surfaces.kept_fraction is not None]
    if kept:
        text += f" Samples kept: {spread(kept, unit='%')}."
    templates = [space for space in spaces if space != "fsnative"]
    if templates:
        text += (f" Series on {listing(templates)} were resampled from the participant's vertices by barycentric "
                 "interpolation on the sphere registered to fsaverage.")
    return f"{text} Output surface spaces: {listing(spaces)}."


def _confounds(runs: Sequence[BoldFacts], cite: Citations) -> str:
    cutoffs = sorted({run.highpass_cutoff_s for run in runs if run.highpass_cutoff_s is not None})
    highpass = f"a {listing([f'{c:g} s' for c in cutoffs])} cosine high-pass" if cutoffs else "a cosine high-pass"
    text = ("Confounds were computed on the motion-corrected series in native space: framewise displacement "
            f"(FD) {cite('power2012')}, relative root-mean-square displacement {cite('jenkinson')}, DVARS and "
            f"standardized DVARS {cite('dvars')}, the mean signals of the brain, CSF and WM, and anatomical and "
            f"temporal CompCor components {cite('compcor')} after {highpass}, retaining the components that "
            "explain 50 % of the variance in each mask")
    kept = []
    for mask in ("CSF", "WM", "combined", "temporal"):
        counts = [float(run.compcor[mask]) for run in runs if mask in run.compcor]
        if counts:
            kept.append(f"{mask} {spread(counts)}")
    text += f" (components kept: {listing(kept)})." if kept else "."
    thresholds = {(run.fd_threshold, run.dvars_threshold) for run in runs}
    for fd, dvars in sorted(thresholds, key=str):
        if fd is not None and dvars is not None:
            text += (f" Volumes with FD above {fd:g} mm or standardized DVARS above {dvars:g} were annotated "
                     "as motion outliers (motion_outlier regressors).")
    outcome = []
    fd_means = [run.mean_fd for run in runs if run.mean_fd is not None]
    if fd_means:
        outcome.append(f"mean FD {spread(fd_means, unit='mm')}")
    for attribute, label in (("fd_outliers", "FD outliers"), ("dvars_outliers", "DVARS outliers"),
                             ("censored", "volumes annotated as motion outliers")):
        values = [float(getattr(run, attribute)) for run in runs if getattr(run, attribute) is not None]
        if values:
            outcome.append(f"{label} {spread(values)}")
    if outcome:
        text += f" Over the steady-state volumes: {listing(outcome)}."
    return text


def _connectivity(runs: Sequence[BoldFacts], cite: Citations) -> str:
    atlases = sorted({run.connectivity_atlas for run in runs if run.connectivity_atlas})
    if not atlases:
        return ""
    strategies = sorted({", ".join(run.denoising) for run in runs if run.denoising})
    confounds = f" (confound strategy: {'; '.join(strategies)})" if strategies else ""
    return (f"Parcel time series were the mean of the template-space series within each parcel of the "
            f"{listing(atlases)} atlas, denoised with nilearn {cite('nilearn')}{confounds} with motion-outlier "
            "volumes censored, and z-scored; functional connectivity is Pearson's correlation and the partial "
            f"correlation from the Ledoit-Wolf shrunk covariance {cite('ledoitwolf')}.")


def fmri_section(runs: Sequence[BoldFacts], cite: Citations) -> Section:
    """Functional data preprocessing, for one participant's runs or pooled over several participants."""
    first = (
        f"{_found(runs)} The steps follow fMRIPrep's order {cite('fmriprep')}. {_nonsteady(runs)} "
        "A reference volume was computed as the voxel-wise median of the steady-state volumes (the single-band "
        "reference where one was acquired and not ignored). Head-motion parameters with respect to the "
        "reference (a rigid transform and six rotation and translation parameters per volume) were estimated "
        "before any temporal filtering, by registering every volume to the reference at once."
    )
    second = " ".join(part for part in (_slice_timing(runs, cite), _distortion(runs, cite)) if part)
    paragraphs = [first, second, f"{_coregistration(runs, cite)} {_resampling(runs)}", _surfaces(runs, cite),
                  _confounds(runs, cite), _connectivity(runs, cite)]
    return Section("Functional data preprocessing (fmri)", tuple(p for p in paragraphs if p))


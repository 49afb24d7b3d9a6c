"""The methods paragraphs of the qc stage (image-quality metrics), from the counts of images assessed."""

from __future__ import annotations

from neurolearn_cli.boilerplate.citations import Citations
from neurolearn_cli.boilerplate.document import Section
from neurolearn_cli.boilerplate.wording import plural
from neurolearn_cli.qc.functional import FD_THRESHOLD_MM


def qc_section(t1w: int, bold: int, cite: Citations) -> Section:
    """Quality control of ``t1w`` T1w images and ``bold`` BOLD runs (MRIQC's measures)."""
    paragraphs = [
        f"Image-quality metrics (IQMs) were computed for {plural(t1w, 'T1w image')} and {plural(bold, 'BOLD run')}, "
        f"with the names and definitions of MRIQC {cite('mriqc')}."
    ]
    if t1w:
        paragraphs.append(
            "For each T1w image, the head was masked by Otsu thresholding and morphology, and the air background "
            "above the bottom of the brain was the noise reference; artifactual air voxels were detected as in "
            f"Mortamet et al. {cite('mortamet')}. IQMs: tissue SNR and Dietrich's background SNR {cite('dietrich')}, "
            f"CNR, CJV, EFC {cite('efc')}, FBER, WM-to-maximum ratio, QI1, smoothness (FWHM from first "
            f"differences, as AFNI's 3dFWHMx {cite('afni')}), intracranial volume fractions, residual partial-volume "
            "error, overlap with the template's tissue priors, bias-field summaries and per-tissue intensity "
            "summaries."
        )
    if bold:
        paragraphs.append(
            "For each BOLD run, after discarding the non-steady-state volumes, IQMs were: temporal SNR, DVARS "
            f"(raw, standardized and voxel-wise standardized {cite('dvars')}), framewise displacement "
            f"{cite('power2012')} (mean, and number and percentage of volumes above {FD_THRESHOLD_MM:g} mm, MRIQC's "
            f"default), global correlation, ghost-to-signal ratios along both in-plane axes {cite('ghost')}, "
            "AFNI-style outlier ratio and quality index, EFC, FBER, SNR, smoothness and intensity summaries."
        )
    return Section("Quality control (qc)", tuple(paragraphs))

"""The summary at the top of the participant report: what was found and what was done, per run.

Rows of (label, value) text, as fMRIPrep's report summary; a value that was
not recorded says so instead of showing a number.
"""

from __future__ import annotations

from collections.abc import Sequence

from neurolearn_cli.boilerplate.facts import (
    AnatFacts,
    BoldFacts,
    BoldSurfaceFacts,
    SurfaceFacts,
)
from neurolearn_cli.boilerplate.functional import (
    SDC_WORDS,
    STC_WORDS,
    notes_about,
    reason,
    sdc_reason,
)
from neurolearn_cli.boilerplate.wording import listing, number
from neurolearn_cli.engine.geometry import anisotropic

MISSING = "not recorded"


def participant_summary(participant: str, anat: AnatFacts | None, runs: Sequence[BoldFacts],
                        ignored: Sequence[str] = (), surfaces: SurfaceFacts | None = None,
                        surfaces_failed: str | None = None) -> list[tuple[str, str]]:
    """The participant's rows: label, T1w images, template, cortical surfaces (made, or why not), BOLD runs,
    output spaces, ``--ignore``d steps."""
    spaces = sorted({space for run in runs for space in _run_spaces(run)})
    rows = [
        ("Participant", f"sub-{participant}"),
        ("T1w images", "none (smri did not run)" if anat is None else
         f"{anat.t1w_images} (combined into the T1w reference)" if anat.t1w_images > 1 else str(anat.t1w_images)),
        ("BOLD runs", f"{len(runs)}: {listing([run.name for run in runs])}" if runs else "none"),
    ]
    if anat is not None and anat.voxel_mm is not None:
        rows.append(("T1w resolution", resolution(anat.voxel_mm)))
    if anat is not None and anat.lesion_ml is not None:
        rows.append(("Lesion mask", f"{number(anat.lesion_ml)} mL: left out of registration costs, the tissue "
                                    "classes and the aCompCor masks; label 4 (lesion) in the dseg"))
    if anat is not None and anat.template:
        rows.append(("Template", anat.template))
    if surfaces is not None or surfaces_failed is not None:
        rows.append(("Cortical surfaces", surfaces_row(surfaces, surfaces_failed)))
    if runs:
        rows.append(("BOLD output spaces", listing(spaces) or MISSING))
    if ignored:
        rows.append(("Steps ignored (--ignore)", ", ".join(ignored)))
    return rows


def surfaces_row(surfaces: SurfaceFacts | None, failed: str | None) -> str:
    """The surfaces stage's outcome in a few words: failed and why, or the topology correction and volumes."""
    if failed is not None or surfaces is None:
        return f"failed ({failed})"
    handles = MISSING if surfaces.handles is None else str(surfaces.handles)
    cut = MISSING if surfaces.voxels_cut is None else str(surfaces.voxels_cut)
    volumes = [f"{tissue} {number(surfaces.volumes_ml[column], 4)} mL" for tissue, column in
               (("GM", "GM_surface"), ("WM", "WM_surface")) if column in surfaces.volumes_ml]
    return (f"white and pial surfaces of both hemispheres, genus 0 (handles before correction: {handles}; "
            f"voxels cut: {cut})" + (f"; from the surfaces, {listing(volumes)}" if volumes else ""))


def resolution(voxel_mm: tuple[float, float, float]) -> str:
    """Voxel sizes as ``1 x 1 x 5 mm``, with the effective resolution when the voxels are anisotropic."""
    sizes = " x ".join(number(v, 2) for v in voxel_mm) + " mm"
    if not anisotropic(voxel_mm):
        return sizes
    return (f"{sizes} (anisotropic: the effective resolution is {number(max(voxel_mm), 2)} mm across the thick "
            f"slices, {number(min(voxel_mm), 2)} mm within them; outputs keep this grid; tissue volumes are less "
            "certain than from thin slices, see the methods)")


def _slice_timing(run: BoldFacts) -> str:
    if run.slice_timing is None:
        return MISSING
    if not run.slice_timing:
        return f"not applied: {reason(notes_about(run, STC_WORDS))}"
    return "applied" + (f" (to {run.slice_time_s:g} s)" if run.slice_time_s is not None else "")


def _distortion(run: BoldFacts) -> str:
    if run.sdc_method is None:
        return MISSING
    if run.sdc_method == "none":
        return f"not applied: {sdc_reason(run)}"
    return run.sdc_method


def _coregistration(run: BoldFacts) -> str:
    if run.coregistration_method is None:
        return MISSING
    cost = "" if run.coregistration_cost is None else f", final cost {number(run.coregistration_cost)}"
    return run.coregistration_method.upper() + cost


def _run_spaces(run: BoldFacts) -> list[str]:
    """The run's volume output spaces, then its surface ones."""
    return list(run.spaces) + ([] if run.surfaces is None else list(run.surfaces.spaces))


def surface_summary(surfaces: BoldSurfaceFacts) -> str:
    """The surface outputs of a run in one line: spaces, hemispheres, depths, samples kept, vertices missing."""
    hemispheres = ", ".join(f"hemi-{h}" for h in surfaces.hemispheres)
    parts = [f"{listing(list(surfaces.spaces))} ({hemispheres})"]
    if surfaces.depths:
        parts.append(f"{len(surfaces.depths)} depths from white to pial, averaged")
    if surfaces.kept_fraction is not None:
        left = [f"{number(100 * fraction)} % {why}" for fraction, why in
                ((surfaces.outside_fraction, "outside the brain"), (surfaces.unreliable_fraction, "unreliable"))
                if fraction is not None]
        parts.append(f"{number(100 * surfaces.kept_fraction)} % of samples kept" + (f" ({', '.join(left)})"
                                                                                    if left else ""))
    if surfaces.missing_vertices is not None:
        parts.append(f"{surfaces.missing_vertices} vertices missing")
    return "; ".join(parts)


def run_summary(run: BoldFacts) -> list[tuple[str, str]]:
    """One BOLD run's rows: timing, dummy scans, slice timing, SDC (or why not), co-registration, motion."""
    rows = [
        ("Repetition time", MISSING if run.repetition_time is None else f"{run.repetition_time:g} s"),
        ("Volumes", str(run.volumes)),
        ("Non-steady-state volumes", MISSING if run.nonsteady is None else
         str(run.nonsteady) + ("" if run.nonsteady_from is None else f" ({run.nonsteady_from})")),
        ("Slice-timing correction", _slice_timing(run)),
        ("Susceptibility distortion correction", _distortion(run)),
        ("Co-registration to the T1w", _coregistration(run)),
        ("Output spaces", listing(_run_spaces(run)) or MISSING),
        ("Mean FD (steady state)", MISSING if run.mean_fd is None else f"{run.mean_fd:.3f} mm"),
    ]
    fd = "FD outliers" + ("" if run.fd_threshold is None else f" (> {run.fd_threshold:g} mm)")
    rows.append((fd, MISSING if run.fd_outliers is None else str(run.fd_outliers)))
    dvars = "DVARS outliers" + ("" if run.dvars_threshold is None else f" (std DVARS > {run.dvars_threshold:g})")
    rows.append((dvars, MISSING if run.dvars_outliers is None else str(run.dvars_outliers)))
    rows.append(("Motion-outlier regressors", MISSING if run.censored is None else str(run.censored)))
    if run.surfaces is not None:
        rows.append(("Surface outputs", surface_summary(run.surfaces)))
    other = [note for note in run.notes if note not in notes_about(run, (*SDC_WORDS, *STC_WORDS))]
    if other:
        rows.append(("Notes", "; ".join(other)))
    return rows

"""The methods boilerplate and run summary: what ran, with which parameters, what was skipped and why."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from neurolearn_cli.boilerplate import gather
from neurolearn_cli.boilerplate.facts import (
    AnatFacts,
    BoldFacts,
    BoldSurfaceFacts,
    RunFacts,
    Software,
)
from neurolearn_cli.boilerplate.functional import SDC_WORDS, STC_WORDS, notes_about
from neurolearn_cli.boilerplate.methods import methods
from neurolearn_cli.boilerplate.summary import participant_summary, run_summary
from neurolearn_cli.fmri.pipeline import BoldOptions, _slice_timing, distortion_correction
from neurolearn_cli.qc.report import ParticipantReport, render_participant_report

SOFTWARE = Software("9.9", "CPU", {"torch": "2.x"})
ANAT = AnatFacts("01", 1, "MNI152NLin2009aSym", "neurolearnGM108", "MNI152NLin2009aSym", None, 0.028, 0.963,
                 {"GM": 821.7, "WM": 564.7})


def _run(name: str = "sub-01_task-rest_bold", **changes: object) -> BoldFacts:
    facts = dict(name=name, participant="01", repetition_time=2.0, volumes=60, nonsteady=2,
                 nonsteady_from="detected", slice_timing=False, slice_time_s=None, sdc_method="none",
                 coregistration_method="bbr", coregistration_cost=0.0419,
                 spaces=("MNI152NLin2009aSym:res-2", "T1w"),
                 notes=("no fieldmap: susceptibility distortion correction skipped",
                        "no SliceTiming in the sidecar: slice-timing correction skipped"),
                 fd_threshold=0.5, dvars_threshold=1.5, mean_fd=0.12, fd_outliers=2, dvars_outliers=1, censored=3,
                 compcor={"CSF": 4, "WM": 20}, highpass_cutoff_s=128.0, connectivity_atlas="neurolearnGM108",
                 denoising=("motion", "wm_csf"))
    facts.update(changes)
    return BoldFacts(**facts)  # type: ignore[arg-type]


def test_a_section_per_stage_that_ran_with_skipped_steps_and_reasons() -> None:
    text = methods(RunFacts(SOFTWARE, anat=(ANAT,), bold=(_run(),), qc_t1w=1, qc_bold=1)).markdown()
    for title in ("## Anatomical data preprocessing (smri)", "## Functional data preprocessing (fmri)",
                  "## Quality control (qc)", "## References"):
        assert title in text
    assert "Pattern analysis" not in text  # mvpa did not run
    assert ("Susceptibility distortion correction was not applied to the run "
            "(no fieldmap)") in text
    assert "Slice-timing correction was not applied to the run (no SliceTiming in the sidecar" in text
    assert "FD above 0.5 mm or standardized DVARS above 1.5" in text
    assert "neurolearn 9.9" in text and "torch 2.x" in text and "MNI152NLin2009aSym" in text
    # every cited number has its reference, in order, and none is listed uncited
    cited = {int(n) for group in re.findall(r"\[([\d, ]+)\]", text) for n in group.split(",")}
    listed = re.findall(r"^(\d+)\. ", text, flags=re.M)
    assert cited == {int(n) for n in listed} == set(range(1, len(listed) + 1))


def test_the_methods_name_the_templateflow_templates_registered_to() -> None:
    from dataclasses import replace

    plain = methods(RunFacts(SOFTWARE, anat=(ANAT,))).markdown()
    assert "TemplateFlow" not in plain
    text = methods(RunFacts(SOFTWARE, anat=(replace(ANAT, standard=("MNI152NLin6Asym:res-2",)),))).markdown()
    assert "also registered directly to MNI152NLin6Asym:res-2 (read from a local TemplateFlow home)" in text


def test_the_methods_say_how_the_mask_was_made_and_what_was_accepted() -> None:
    from dataclasses import replace

    plain = methods(RunFacts(SOFTWARE, anat=(ANAT,))).markdown()
    assert "derived from the tissue posteriors" in plain and "skull-stripped" not in plain
    assert "local correlation reached 0.75, the TIV lay between 800 and 2300 mL" in plain
    stripped = methods(RunFacts(SOFTWARE, anat=(replace(ANAT, skull_stripped=True),))).markdown()
    assert "recognised as already skull-stripped; its non-zero voxels" in stripped
    assert "its bias field was held 100 times stiffer than a whole head's" in stripped
    assert "derived from the tissue posteriors" not in stripped
    mixed = methods(RunFacts(SOFTWARE, anat=(ANAT, replace(ANAT, participant="02", skull_stripped=True)))).markdown()
    assert "derived from the tissue posteriors" in mixed and "For participant 02, whose T1w was recognised" in mixed


def test_only_stages_with_facts_get_sections() -> None:
    text = methods(RunFacts(SOFTWARE, anat=(ANAT,))).markdown()
    assert "(smri)" in text and "(fmri)" not in text and "(qc)" not in text


def test_runs_treated_differently_are_named_with_their_outcome() -> None:
    corrected = _run("sub-01_task-rest_run-1_bold", sdc_method="phasediff fieldmap", slice_timing=True,
                     slice_time_s=0.978, notes=())
    text = methods(RunFacts(SOFTWARE, bold=(corrected, _run("sub-01_task-rest_run-2_bold")))).markdown()
    assert "estimated from a phasediff fieldmap" in text and "in run sub-01_task-rest_run-1_bold" in text
    assert "not applied to run sub-01_task-rest_run-2_bold (no fieldmap" in text
    assert "Jezzard P" in text  # the phasediff method's reference


def test_the_fmri_stage_notes_are_tied_to_their_step() -> None:
    """The notes fmri writes are found by the words the boilerplate looks for (so a reason is never lost)."""
    sdc: list[str] = []
    distortion_correction(None, {}, None, "bold.nii.gz", (), sdc)  # type: ignore[arg-type]
    distortion_correction(None, {}, None, "bold.nii.gz", ("fieldmaps",), sdc)  # type: ignore[arg-type]
    stc: list[str] = []
    _slice_timing(None, {}, 2.0, 0, BoldOptions(), "bold.json", stc)  # type: ignore[arg-type]
    _slice_timing(None, {}, 2.0, 0, BoldOptions(ignore=("slicetiming",)), "bold.json", stc)  # type: ignore[arg-type]
    run = _run(notes=(*sdc, *stc))
    assert notes_about(run, SDC_WORDS) == tuple(sdc) and len(sdc) == 2
    assert notes_about(run, STC_WORDS) == tuple(stc) and len(stc) == 2


def test_summary_rows_say_what_was_done_and_what_is_not_recorded() -> None:
    rows = dict(run_summary(_run()))
    assert rows["Susceptibility distortion correction"].startswith("not applied: no fieldmap")
    assert rows["Non-steady-state volumes"] == "2 (detected)"
    assert rows["FD outliers (> 0.5 mm)"] == "2" and rows["DVARS outliers (std DVARS > 1.5)"] == "1"
    assert rows["Co-registration to the T1w"] == "BBR, final cost 0.0419"
    unknown = dict(run_summary(_run(mean_fd=None, fd_outliers=None, coregistration_cost=None)))
    assert unknown["Mean FD (steady state)"] == "not recorded" and unknown["FD outliers (> 0.5 mm)"] == "not recorded"
    people = dict(participant_summary("01", ANAT, [_run()], ("sbref",)))
    assert people["Participant"] == "sub-01" and people["BOLD runs"] == "1: sub-01_task-rest_bold"
    assert people["BOLD output spaces"] == "MNI152NLin2009aSym:res-2 and T1w"
    assert people["Steps ignored (--ignore)"] == "sbref"
    sampled = _run(surfaces=BoldSurfaceFacts(("fsnative", "fsaverage5"), ("L", "R"), (0.0, 0.5, 1.0), 0.99, 0.01,
                                             0.0, 0))
    assert dict(run_summary(sampled))["Output spaces"] == "MNI152NLin2009aSym:res-2, T1w, fsnative and fsaverage5"
    assert dict(participant_summary("01", ANAT, [sampled]))["BOLD output spaces"] == (
        "MNI152NLin2009aSym:res-2, T1w, fsaverage5 and fsnative")


def test_participant_page_has_summary_and_methods_escaped() -> None:
    evil = "<script>alert(1)</script>"
    run = _run(notes=(f"no fieldmap: susceptibility distortion correction skipped {evil}",))
    page = render_participant_report(ParticipantReport(
        participant="01", summary=participant_summary("01", ANAT, [run]), runs={run.name: run_summary(run)},
        methods=methods(RunFacts(SOFTWARE, anat=(ANAT,), bold=(run,), qc_bold=1))))
    assert 'id="summary"' in page and "<caption>sub-01_task-rest_bold</caption>" in page
    assert "<h3>Functional data preprocessing (fmri)</h3>" in page and "<h3>References</h3>" in page
    assert evil not in page and "&lt;script&gt;" in page
    assert page.index('id="summary"') < page.index('id="anat"') < page.index('id="methods"')


def _write(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload), encoding="utf-8")


def test_facts_are_read_from_what_the_stages_wrote(tmp_path: Path) -> None:
    func, anat = tmp_path / "sub-01" / "func", tmp_path / "sub-01" / "anat"
    _write(anat / "sub-01_desc-preproc_T1w.json", {"Sources": ["bids:raw:sub-01/anat/sub-01_T1w.nii.gz"]})
    _write(anat / "sub-01_space-MNI152NLin2009aSym_res-2_desc-preproc_T1w.json", {"Sources": []})
    # a TemplateFlow template whose name sorts first is not taken for the normalization template
    _write(anat / "sub-01_space-ICBM452Air_res-2_desc-preproc_T1w.json", {"Sources": [], "Template": {}})
    _write(anat / "sub-01_seg-x_stat-gmvolume_morph.json",
           {"Atlas": "x", "QC": {"affine_cost": 0.03, "volume_GM_ml": 800.0, "volume_WM_ml": float("nan")}})
    prefix = "sub-01_task-rest"
    _write(func / f"{prefix}_space-T1w_desc-preproc_bold.json", {
        "RepetitionTime": 2.0, "SliceTimingCorrected": False, "NonSteadyStateVolumes": 1,
        "NonSteadyStateVolumesFrom": "detected", "SusceptibilityDistortionCorrection": "none",
        "CoregistrationMethod": "nmi", "CoregistrationCost": -1.2,
        "ProcessingNotes": ["no fieldmap: susceptibility distortion correction skipped"],
        "MotionOutlierThresholds": {"framewise_displacement": 0.5, "std_dvars": 1.5}})
    # volume 0 non-steady; FD/DVARS of volume 1 compare with it and are left out
    table = pd.DataFrame({"framewise_displacement": [None, 9.0, 0.1, 0.7, 0.2],
                          "std_dvars": [None, 9.0, 1.0, 2.0, 1.6],
                          "motion_outlier00": [0, 1, 0, 0, 0], "motion_outlier01": [0, 0, 0, 1, 0]})
    table.to_csv(func / f"{prefix}_desc-confounds_timeseries.tsv", sep="\t", index=False, na_rep="n/a")
    _write(func / f"{prefix}_desc-confounds_timeseries.json", {
        "a_comp_cor_00": {"Method": "aCompCor", "Mask": "CSF", "Retained": True},
        "a_comp_cor_01": {"Method": "aCompCor", "Mask": "CSF", "Retained": False},
        "t_comp_cor_00": {"Method": "tCompCor", "Retained": True},
        "cosine00": {"Method": "Cosine basis", "Cutoff": 128.0}})
    [anat_facts] = gather.discover_anat(tmp_path)  # the template-space copy is not a second participant
    assert (anat_facts.participant, anat_facts.t1w_images, anat_facts.template) == ("01", 1, "MNI152NLin2009aSym")
    assert anat_facts.volumes_ml == {"GM": 800.0} and anat_facts.affine_cost == 0.03
    assert anat_facts.standard == ("ICBM452Air:res-2",)
    [run] = gather.discover_bold(tmp_path)
    assert run.name == "sub-01_task-rest_bold" and run.spaces == ("T1w",) and run.nonsteady == 1
    assert run.mean_fd == pytest.approx(1.0 / 3) and (run.fd_outliers, run.dvars_outliers) == (1, 2)
    assert run.censored == 2 and run.compcor == {"CSF": 1, "temporal": 1} and run.highpass_cutoff_s == 128.0
    assert run.notes == ("no fieldmap: susceptibility distortion correction skipped",)
    assert run.connectivity_atlas is None and run.slice_timing is False


def test_the_methods_say_what_was_done_with_a_lesion_and_thick_slices() -> None:
    from dataclasses import replace

    plain = methods(RunFacts(SOFTWARE, anat=(ANAT,))).markdown()
    assert "lesion" not in plain and "anisotropic" not in plain
    clinical = replace(ANAT, lesion_ml=7.09, voxel_mm=(1.0, 1.0, 5.0))
    text = methods(RunFacts(SOFTWARE, anat=(clinical,))).markdown()
    assert "lesion mask (7.09 mL) was left out of the cost of every registration" in text
    assert "labelled 4 (lesion)" in text and "aCompCor" in text
    assert "kept its anisotropic voxels (1 x 1 x 5 mm)" in text
    assert "Tissue volumes from thick slices are less certain" in text
    assert "thick slices" not in plain
    assert "partial volume" in plain and text.count("partial volume") == 1  # modelled on every scan
    rows = dict(participant_summary("01", clinical, []))
    assert rows["Lesion mask"].startswith("7.09 mL")
    assert rows["T1w resolution"].startswith("1 x 1 x 5 mm (anisotropic")
    assert "tissue volumes are less certain" in rows["T1w resolution"]


def test_the_methods_say_when_a_noisy_air_was_left_out() -> None:
    from dataclasses import replace

    assert "noisy" not in methods(RunFacts(SOFTWARE, anat=(ANAT,))).markdown()
    one = methods(RunFacts(SOFTWARE, anat=(replace(ANAT, noisy_air_ml=5690.0),))).markdown()
    assert "The air around the head was noisy: its Rician noise floor (3.03 noise standard deviations" in one
    assert "as a zero-filled background is" in one
    assert "no brighter than that floor (5690 mL) was left out of the mixture" in one
    pooled = methods(RunFacts(SOFTWARE, anat=(ANAT, replace(ANAT, participant="02", noisy_air_ml=5690.0)))).markdown()
    assert "For 1 participant, the air around the head was noisy" in pooled


def test_gather_counts_the_t1w_sources_not_the_lesion_mask(tmp_path: Path) -> None:
    anat = tmp_path / "sub-01" / "anat"
    _write(anat / "sub-01_desc-preproc_T1w.json", {"Sources": ["bids:raw:sub-01/anat/sub-01_T1w.nii.gz",
                                                              "bids:raw:sub-01/anat/sub-01_label-lesion_roi.nii.gz"]})
    _write(anat / "sub-01_seg-x_stat-gmvolume_morph.json", {"QC": {"volume_lesion_ml": 7.5,
                                                                   "volume_noisy_air_ml": 5690.0}})
    [facts] = gather.discover_anat(tmp_path)
    assert facts.t1w_images == 1 and facts.lesion_ml == 7.5 and facts.voxel_mm is None  # no image beside it
    assert facts.noisy_air_ml == 5690.0


def test_the_surfaces_section_says_what_was_done_and_the_report_shows_a_failure(tmp_path: Path) -> None:
    from neurolearn_cli.boilerplate.facts import SurfaceFacts

    anat = tmp_path / "sub-01" / "anat"
    for hemi, euler in (("L", -4), ("R", 2)):
        _write(anat / f"sub-01_hemi-{hemi}_white.json", {"EulerCharacteristicBeforeCorrection": euler,
                                                         "VoxelsCutByTopologyCorrection": 7,
                                                         "SelfIntersectingFaces": 1})
        _write(anat / f"sub-01_hemi-{hemi}_pial.json", {"SelfIntersectingFaces": 2})
    pd.DataFrame([{"participant_id": "sub-01", "GM_surface": 712.25, "WM_surface": 520.5}]).to_csv(
        anat / "sub-01_stat-volume_morph.tsv", sep="\t", index=False)
    found = gather.discover_surfaces(tmp_path)
    assert found == [SurfaceFacts("01", handles=3, voxels_cut=14, intersections=6,
                                  volumes_ml={"GM_surface": 712.25, "WM_surface": 520.5})]
    text = methods(RunFacts(SOFTWARE, anat=(ANAT,), surfaces=tuple(found))).markdown()
    assert "## Cortical surfaces (surfaces)" in text and "cortical surfaces (surfaces)" in text
    assert "had 3 handles" in text and "left out 14 voxels" in text and "6 self-intersecting faces" in text
    assert "grey matter 712.2 mL and white matter 520.5 mL" in text
    assert "Lewiner" in text and "Fischl" in text
    made = dict(participant_summary("01", ANAT, [], surfaces=found[0]))["Cortical surfaces"]
    assert made == ("white and pial surfaces of both hemispheres, genus 0 (handles before correction: 3; voxels "
                    "cut: 14); from the surfaces, GM 712.2 mL and WM 520.5 mL")
    reason = "surfaces: white surface has Euler characteristic 0 <after> topology correction"
    assert dict(participant_summary("01", ANAT, [], surfaces_failed=reason))["Cortical surfaces"] == f"failed ({reason})"
    assert "Cortical surfaces" not in dict(participant_summary("01", ANAT, []))
    page = render_participant_report(ParticipantReport(participant="01", errors=(reason,)))
    assert '<div class="error">surfaces: white surface has Euler characteristic 0 &lt;after&gt;' in page

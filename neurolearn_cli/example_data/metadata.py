"""JSON sidecars, dataset descriptions and README text of the example dataset."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from neurolearn_cli import __version__
from neurolearn_cli.example_data.design import CONDITIONS
from neurolearn_cli.example_data.participants import Site
from neurolearn_cli.example_data.protocol import T1W, BoldProtocol

#: ``GeneratedBy`` name that marks a directory as a previous example dataset (safe to replace).
GENERATOR = "neurolearn example-data"

_README = """\
neurolearn example dataset (simulated)
======================================

A small, fully synthetic BIDS dataset written by `neurolearn example-data` to
try neurolearn without downloading anything. Every image is simulated from
nilearn's bundled MNI152 2009a symmetric template (T1w, GM and WM maps,
downsampled to 2 mm) inside a synthetic head (scalp, skull, CSF, neck).

Each participant has a 2 mm T1w (random smooth nonlinear warp, head pose,
bias field, Rician noise); {with_bold} one {task} BOLD run ({volumes} volumes, TR {tr} s,
3 mm) simulated from the same warped anatomy, with head motion, non-steady-state
initial volumes, drifts, physiological fluctuations and an HRF-convolved block
response in early visual (all blocks) and fusiform (faces > scrambled faces)
cortex.

Groups: patients have grey-matter atrophy in bilateral hippocampus, amygdala,
anterior insula, posterior cingulate/precuneus and middle temporal gyrus
(severity varies); GM also declines mildly with age.
Sites: {sites}.

code/patients_vs_controls.yaml is the group analysis `make demo` runs: can a
classifier tell patients from controls from their regional grey-matter volumes?
Run it with `neurolearn <this folder> <derivatives> group --spec code/patients_vs_controls.yaml`.

derivatives/simulation/ holds the ground truth: tissue labels on the T1w grid,
activated regions on the BOLD grid, true motion parameters and each
participant's atrophy severity and number of non-steady-state volumes.

Generated with seed {seed}; the same seed gives byte-identical files.
"""


def _site_text(sites: Mapping[str, Site]) -> str:
    if len(sites) > 1:
        return f"{' and '.join(sites)} differ in intensity scale, contrast and noise"
    site = next(iter(sites.values()))
    return (f"every participant was scanned at {site.name}, whose simulated scanner differs from other sites' in "
            f"intensity scale ({site.t1_scale:.0f}), contrast (gamma {site.t1_gamma:.2f}), noise "
            f"({site.t1_noise:.3f}), bias strength ({site.bias_spread:.3f}) and grey matter "
            f"({-100 * site.gm_offset:+.1f} %)")


def readme(seed: int, protocol: BoldProtocol, bold_participants: int, participants: int,
           sites: Mapping[str, Site]) -> str:
    """README text; the first ``bold_participants`` of ``participants`` have a BOLD run."""
    if bold_participants >= participants:
        with_bold = "each also has"
    elif bold_participants == 0:
        with_bold = "none has"
    else:
        with_bold = f"the first {bold_participants} also have"
    return _README.format(task=protocol.task, volumes=protocol.volumes, tr=protocol.repetition_time, seed=seed,
                          with_bold=with_bold, sites=_site_text(sites))


#: Path of the demo's group analysis spec inside the dataset (BIDS keeps scripts and settings in ``code/``).
ANALYSIS_SPEC = "code/patients_vs_controls.yaml"

_ANALYSIS_SPEC = """\
# The group analysis of `make demo`: patients against controls from regional grey-matter volumes.
# Volumes are divided by each participant's intracranial volume, so head size does not hide the atrophy;
# a univariate test inside each training fold keeps the 10 % most different parcels for a linear SVM.
name: patients_vs_controls
features: {kind: morph, normalize: tiv}
target: {column: group}
model: {name: svm}
preprocessing: {selection: {method: anova, percentile: 10}}
validation: {outer: 4, inner: 3, permutations: 50}
seed: 0
"""


def analysis_spec() -> str:
    """The demo's group analysis spec (YAML with comments), written to :data:`ANALYSIS_SPEC`."""
    return _ANALYSIS_SPEC


def _generated_by(seed: int) -> list[dict[str, str]]:
    return [{"Name": GENERATOR, "Version": __version__, "Description": f"simulated with seed {seed}"}]


def dataset_description(seed: int) -> dict[str, Any]:
    """Raw dataset's ``dataset_description.json``."""
    return {
        "Name": "neurolearn example dataset (simulated)",
        "BIDSVersion": "1.9.0",
        "DatasetType": "raw",
        "License": "CC0",
        "Authors": ["neurolearn developers"],
        "GeneratedBy": _generated_by(seed),
    }


def truth_description(seed: int) -> dict[str, Any]:
    """Ground-truth derivative's ``dataset_description.json``."""
    return {
        "Name": "neurolearn example dataset: simulation ground truth",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "License": "CC0",
        "GeneratedBy": _generated_by(seed),
        "SourceDatasets": [{"URL": "../../"}],
    }


def participants_sidecar(sites: Mapping[str, Site]) -> dict[str, Any]:
    """``participants.json``: what each column means."""
    return {
        "participant_id": {"Description": "Participant label"},
        "age": {"Description": "Age at scan", "Units": "year"},
        "sex": {"Description": "Sex", "Levels": {"M": "male", "F": "female"}},
        "site": {"Description": "Scanner site",
                 "Levels": {name: f"{site.manufacturer} {site.model}" for name, site in sites.items()}},
        "group": {
            "Description": "Diagnostic group",
            "Levels": {"control": "healthy control", "patient": "patient with medial temporal and insular atrophy"},
        },
    }


def _scanner(site: Site) -> dict[str, Any]:
    return {
        "Manufacturer": site.manufacturer,
        "ManufacturersModelName": site.model,
        "MagneticFieldStrength": 3,
        "InstitutionName": site.name,
    }


def t1w_sidecar(site: Site) -> dict[str, Any]:
    """T1w sidecar: MPRAGE parameters and the site's scanner."""
    return {
        **_scanner(site),
        "MRAcquisitionType": "3D",
        "PulseSequenceType": "MPRAGE",
        "RepetitionTime": T1W.repetition_time,
        "EchoTime": T1W.echo_time,
        "InversionTime": T1W.inversion_time,
        "FlipAngle": T1W.flip_angle,
    }


def bold_sidecar(site: Site, protocol: BoldProtocol) -> dict[str, Any]:
    """BOLD sidecar: timing (TR, SliceTiming), phase encoding and the task."""
    return {
        **_scanner(site),
        "TaskName": protocol.task,
        "TaskDescription": "Blocks of faces and of phase-scrambled faces, separated by fixation.",
        "RepetitionTime": protocol.repetition_time,
        "EchoTime": protocol.echo_time,
        "FlipAngle": protocol.flip_angle,
        "MRAcquisitionType": "2D",
        "PulseSequenceType": "Gradient Echo EPI",
        "SliceTiming": protocol.slice_timing,
        "SliceEncodingDirection": "k",
        "PhaseEncodingDirection": "j-",
        "TotalReadoutTime": protocol.total_readout_time,
        "EffectiveEchoSpacing": round(protocol.total_readout_time / (protocol.shape[1] - 1), 8),
        "NumberOfVolumesDiscardedByScanner": 0,
    }


def events_sidecar() -> dict[str, Any]:
    """``task-<task>_events.json``: the columns of the events files."""
    return {
        "onset": {"Description": "Block start from the beginning of the first volume", "Units": "s"},
        "duration": {"Description": "Block length", "Units": "s"},
        "trial_type": {
            "Description": "Stimulus category of the block",
            "Levels": {CONDITIONS[0]: "photographs of faces", CONDITIONS[1]: "phase-scrambled faces"},
        },
    }


def truth_participants_sidecar() -> dict[str, Any]:
    """Ground-truth ``participants.json``."""
    return {
        "participant_id": {"Description": "Participant label"},
        "atrophy_severity": {"Description": "Scale of the regional GM loss (0 for controls, 0.5 to 1 for patients)"},
        "nonsteady_volumes": {"Description": "Number of initial non-steady-state BOLD volumes"},
    }


def motion_sidecar() -> dict[str, Any]:
    """Sidecar of the true motion parameters."""
    units = {"trans": "mm", "rot": "rad"}
    return {
        f"{kind}_{axis}": {
            "Description": f"True head {'translation along' if kind == 'trans' else 'rotation about'} {axis}, relative to the first volume",
            "Units": units[kind],
        }
        for kind in ("trans", "rot")
        for axis in ("x", "y", "z")
    }

"""Templates from a local TemplateFlow home, read as files: never imported, never downloaded.

Sites without network pre-populate a TemplateFlow directory; this module finds
it (``--templateflow-dir``, else ``$TEMPLATEFLOW_HOME``, else TemplateFlow's
own default ``~/.cache/templateflow``) and lists what it holds from the file
names alone, as TemplateFlow lays them out::

    tpl-<name>/[cohort-<c>/]tpl-<name>[_cohort-<c>]_res-<NN>_T1w.nii.gz
                                                  ..._desc-brain_T1w.nii.gz
                                                  ..._desc-brain_mask.nii.gz
                                                  ..._label-{GM,WM,CSF}_probseg.nii.gz

A template (one cohort of it, where it has cohorts) is listed with every
resolution that has a T1w; the brain files and the tissue priors are optional.
smri segments under the bundled template's priors whatever the output spaces;
a template's own priors serve qc's overlap measures (:func:`load_priors`). A file not present
(e.g. a DataLad clone's broken symlink to content never fetched) counts as
absent. Listing imports nothing heavy, so the command line validates
``--output-spaces`` against it before torch is loaded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from neurolearn_cli.engine.image import Grid, Image

ENV_VARIABLE = "TEMPLATEFLOW_HOME"
DEFAULT_HOME = Path("~/.cache/templateflow")
_FILE = re.compile(
    r"^tpl-(?P<name>[A-Za-z0-9]+)(?:_cohort-(?P<cohort>[A-Za-z0-9]+))?_res-(?P<res>[A-Za-z0-9]+)"
    r"(?:_label-(?P<label>[A-Za-z0-9]+))?(?:_desc-(?P<desc>[A-Za-z0-9]+))?_(?P<suffix>T1w|mask|probseg)\.nii\.gz$"
)
#: The tissues of a template's priors, in the order qc stacks them (TemplateFlow's ``label-`` values).
PRIOR_TISSUES = ("GM", "WM", "CSF")
#: The files read, by (suffix, label, desc): the head T1w, the brain T1w, the brain mask and the tissue priors.
_KINDS: dict[tuple[str, str | None, str | None], str] = {
    ("T1w", None, None): "t1w", ("T1w", None, "brain"): "brain_t1w", ("mask", None, "brain"): "mask",
    **{("probseg", tissue, None): f"probseg_{tissue}" for tissue in PRIOR_TISSUES},
}


def templateflow_home(option: Path | None) -> Path:
    """The TemplateFlow home: ``option``, else ``$TEMPLATEFLOW_HOME``, else TemplateFlow's default."""
    if option is not None:
        return Path(option).expanduser()
    return Path(os.environ.get(ENV_VARIABLE) or DEFAULT_HOME).expanduser()


def resolution_label(label: str) -> str:
    """A ``res-`` label without TemplateFlow's zero padding (``02`` -> ``2``)."""
    return label.lstrip("0") or "0"


@dataclass(frozen=True)
class ResolutionFiles:
    """A template's files at one resolution: the T1w and whichever brain files are present."""

    t1w: Path
    brain_t1w: Path | None = None
    mask: Path | None = None
    priors: tuple[Path, ...] | None = None  # GM, WM and CSF (:data:`PRIOR_TISSUES`), when all three are present

    def paths(self) -> list[Path]:
        """Every file, for fingerprints."""
        return [path for path in (self.t1w, self.brain_t1w, self.mask, *(self.priors or ())) if path is not None]


@dataclass(frozen=True)
class TemplateFiles:
    """One template of the home (one cohort of it, where it has cohorts) at each of its resolutions.

    ``resolutions`` maps ``res-`` labels without padding to the files.
    """

    name: str
    cohort: str | None
    home: Path
    resolutions: Mapping[str, ResolutionFiles]

    def paths(self) -> list[Path]:
        """Every file of every resolution, for fingerprints."""
        return [path for files in self.resolutions.values() for path in files.paths()]

    def relative(self, path: Path) -> str:
        """``path`` relative to the home, as TemplateFlow names it (for sidecars: no machine's paths)."""
        return path.relative_to(self.home).as_posix()


def _collect(home: Path) -> dict[tuple[str, str | None], dict[str, dict[str, Path]]]:
    """(name, cohort) -> ``res-`` label -> kind (:data:`_KINDS`) -> file, for the files present in ``home``."""
    found: dict[tuple[str, str | None], dict[str, dict[str, Path]]] = {}
    for folder in sorted(home.glob("tpl-*")):
        for path in sorted(folder.rglob("tpl-*.nii.gz")):
            match = _FILE.match(path.name)
            if match is None or match["name"] != folder.name[4:] or not path.is_file():
                continue
            kind = _KINDS.get((match["suffix"], match["label"], match["desc"]))
            if kind is not None:
                entry = found.setdefault((match["name"], match["cohort"]), {})
                entry.setdefault(resolution_label(match["res"]), {})[kind] = path
    return found


def scan_home(home: Path) -> dict[tuple[str, str | None], TemplateFiles]:
    """Every template in ``home``, keyed by (name, cohort); an absent home holds none."""
    templates = {}
    for (name, cohort), by_res in _collect(home).items():
        resolutions = {
            res: ResolutionFiles(
                t1w=files["t1w"],
                brain_t1w=files.get("brain_t1w"),
                mask=files.get("mask"),
                priors=(tuple(files[f"probseg_{tissue}"] for tissue in PRIOR_TISSUES)
                        if all(f"probseg_{tissue}" in files for tissue in PRIOR_TISSUES) else None),
            )
            for res, files in sorted(by_res.items()) if "t1w" in files
        }
        if resolutions:
            templates[(name, cohort)] = TemplateFiles(name, cohort, home, resolutions)
    return templates


@dataclass(frozen=True)
class StandardTemplate:
    """A TemplateFlow template loaded for registration, on one grid.

    Attributes
    ----------
    name, cohort : str, str or None
        The template (``space-`` entity) and its cohort.
    t1w : Image
        The template's T1w, intensities scaled to [0, 1].
    mask : Image
        Its brain mask (0/1); the head's foreground when the template has none
        (``has_brain_mask`` False: registration then aligns head to head).
    has_brain_mask : bool
        Whether ``mask`` is the template's brain mask.
    files : list of str
        The files read, relative to the TemplateFlow home (for sidecars).
    """

    name: str
    cohort: str | None
    t1w: Image
    mask: Image
    has_brain_mask: bool
    files: tuple[str, ...]


def load_standard(template: TemplateFiles, resolution: str, device: torch.device) -> StandardTemplate:
    """``template`` at ``resolution`` on ``device``: its T1w and its brain mask.

    The mask is ``desc-brain_mask``, else the non-zero voxels of
    ``desc-brain_T1w``, else (no brain files) the head's foreground.
    """
    import torch

    from neurolearn_cli.engine.io import load_image
    from neurolearn_cli.engine.registration import foreground_mask

    files = template.resolutions[resolution]
    t1w = load_image(files.t1w, device)
    t1w = t1w.with_data(t1w.data.clamp(min=0) / t1w.data.max())
    read = [files.t1w]
    if files.mask is not None:
        mask, has_brain_mask = load_image(files.mask, device), True
        read.append(files.mask)
    elif files.brain_t1w is not None:
        mask, has_brain_mask = load_image(files.brain_t1w, device), True
        read.append(files.brain_t1w)
    else:
        mask, has_brain_mask = foreground_mask(t1w), False
    if mask.grid != t1w.grid:
        raise ValueError(f"{read[-1]}: not on the grid of {files.t1w}")
    threshold = 0.5 if files.mask is not None else 0.0  # a mask file may hold fractions; a brain T1w is 0 outside
    mask = mask.with_data((mask.data > threshold).to(torch.float32))
    return StandardTemplate(template.name, template.cohort, t1w, mask, has_brain_mask,
                            tuple(template.relative(path) for path in read))


def load_priors(template: TemplateFiles, voxel_mm: float, device: torch.device) -> Image | None:
    """``template``'s GM, WM and CSF priors as one 4D image, at its resolution closest to ``voxel_mm``.

    None when no resolution has all three. Stacked in :data:`PRIOR_TISSUES`
    order, as :meth:`~neurolearn_cli.smri.template.Template.priors` stacks the
    bundled template's, so one resampling maps the points once for all three.
    """
    import torch

    from neurolearn_cli.engine.io import load_images

    with_priors = {res: files for res, files in template.resolutions.items() if files.priors is not None}
    if not with_priors:
        return None
    grids = {res: grid for res, grid in standard_grids(template, device).items() if res in with_priors}
    priors = with_priors[closest_resolution(grids, voxel_mm)].priors or ()
    maps = load_images(list(priors), device)
    if any(image.grid != maps[0].grid for image in maps):
        raise ValueError(f"{priors[0].parent}: the {'/'.join(PRIOR_TISSUES)} priors are not on one grid")
    return maps[0].with_data(torch.stack([image.data.clamp(0, 1) for image in maps], dim=-1))


def standard_grids(template: TemplateFiles, device: torch.device) -> dict[str, Grid]:
    """The grid of ``template``'s T1w at each resolution, by ``res-`` label, from the headers alone."""
    from neurolearn_cli.engine.io import read_grid

    return {resolution: read_grid(files.t1w, device) for resolution, files in template.resolutions.items()}


def closest_resolution(grids: Mapping[str, Grid], voxel_mm: float) -> str:
    """The ``res-`` label of the grid whose largest voxel side is closest to ``voxel_mm``."""
    return min(grids, key=lambda res: abs(max(grids[res].spacing) - voxel_mm))

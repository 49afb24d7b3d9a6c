"""Atlases in template space: the package's default parcellation and user atlases.

The default parcellation is derived deterministically from the bundled
template at 2 mm: grey matter (template GM probability > 0.5) of the left
hemisphere is split into spatially compact parcels by k-means on voxel
coordinates (farthest-point start, fixed iterations, float64: no randomness),
deep grey matter (more than ``DEEP_MM`` from the brain's outer surface:
basal ganglia, thalamus, insula) separately into a few parcels, and the right
hemisphere takes the mirrored parcel centres (the template is symmetric).
Every GM voxel joins the nearest centre of its hemisphere and depth class.
:func:`generate_default_atlas` builds it; ``resources/`` holds the result
(label image + table) so runs read it instead of rebuilding it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd
import torch
from scipy import ndimage

from neurolearn_cli.engine.image import Image
from neurolearn_cli.errors import InputError
from neurolearn_cli.smri.template import Template
from neurolearn_cli.spaces import BUNDLED_TEMPLATE, atlas_space

DEFAULT_ATLAS_NAME = "neurolearnGM108"
DEFAULT_ATLAS_FILE = "tpl-MNI152NLin2009aSym_res-02_atlas-neurolearnGM108_dseg.nii.gz"
DEFAULT_LABELS_FILE = "atlas-neurolearnGM108_dseg.tsv"
CORTICAL_PER_HEMISPHERE = 50
DEEP_PER_HEMISPHERE = 4
DEEP_MM = 28.0
KMEANS_ITERATIONS = 60


@dataclass(frozen=True)
class Atlas:
    """A label image in template space and its label table (columns ``index``, ``name``).

    ``space`` names the template the atlas was defined on; ``via`` the
    TemplateFlow template it is warped through (its own, when the home has
    it; None: applied in the bundled template); ``note`` says how it relates
    to the normalization (written to sidecars and reports).
    """

    name: str
    labels: Image
    table: pd.DataFrame
    space: str
    note: str
    via: str | None = None


def _farthest_points(points: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of ``k`` points by farthest-point sampling from the first point (deterministic)."""
    chosen = [0]
    distance = torch.linalg.norm(points - points[0], dim=1)
    for _ in range(1, k):
        index = int(torch.argmax(distance))
        chosen.append(index)
        distance = torch.minimum(distance, torch.linalg.norm(points - points[index], dim=1))
    return torch.tensor(chosen)


def kmeans_centres(points: torch.Tensor, k: int, iterations: int = KMEANS_ITERATIONS) -> torch.Tensor:
    """Lloyd's k-means centres (k, 3) of ``points`` (N, 3) float64, farthest-point start."""
    centres = points[_farthest_points(points, k)].clone()
    for _ in range(iterations):
        assignment = torch.cdist(points, centres).argmin(1)
        sums = torch.zeros_like(centres).index_add_(0, assignment, points)
        counts = torch.bincount(assignment, minlength=k).to(points.dtype)[:, None]
        centres = torch.where(counts > 0, sums / counts.clamp_min(1), centres)
    return centres


def _world(indices: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    return indices.to(torch.float64) @ affine[:3, :3].T + affine[:3, 3]


def generate_default_atlas(template: Template) -> Atlas:
    """Build the default parcellation on ``template``'s grid (use a 2 mm template)."""
    affine = template.gm.affine.cpu()
    gm = template.gm.data.cpu() > 0.5
    brain = template.mask.data.cpu().numpy() > 0.5
    depth = ndimage.distance_transform_edt(brain, sampling=template.gm.spacing)
    deep = torch.as_tensor(depth > DEEP_MM)
    voxels = torch.nonzero(gm)
    world = _world(voxels, affine)
    is_deep = deep[tuple(voxels.T)]
    left = world[:, 0] < 0
    mirror = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    labels = torch.zeros(gm.shape, dtype=torch.int64)
    rows = []
    offset = 0
    for kind, selector, k in (("gm", ~is_deep, CORTICAL_PER_HEMISPHERE), ("deep", is_deep, DEEP_PER_HEMISPHERE)):
        centres = kmeans_centres(world[selector & left], k)
        order = torch.argsort(centres[:, 1] * 1e4 + centres[:, 2])
        centres = centres[order]
        for hemi, side, hemi_centres in (("L", left, centres), ("R", ~left, centres * mirror)):
            chosen = selector & side
            nearest = torch.cdist(world[chosen], hemi_centres).argmin(1)
            labels[tuple(voxels[chosen].T)] = nearest + offset + 1
            for j, centre in enumerate(hemi_centres.tolist()):
                rows.append({"index": offset + j + 1, "name": f"{hemi}_{kind}_{j + 1:02d}",
                             "x": round(centre[0], 1), "y": round(centre[1], 1), "z": round(centre[2], 1)})
            offset += k
    table = pd.DataFrame(rows)
    image = Image(labels.to(torch.float32), affine.to(torch.float64))
    return Atlas(DEFAULT_ATLAS_NAME, image.to(template.gm.device), table, template.name,
                 "derived from the bundled MNI152NLin2009aSym GM map by k-means (no third-party atlas)")


def _read_labels_table(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, sep="\t")
    except (OSError, ValueError) as error:
        raise InputError(path, f"cannot read label table ({error})") from error
    names = "name" if "name" in table.columns else "label" if "label" in table.columns else None
    if "index" not in table.columns or names is None:
        raise InputError(path, "label table needs columns 'index' and 'name' (or 'label')")
    if table["index"].duplicated().any() or table[names].duplicated().any():
        raise InputError(path, "label table has duplicated indices or names")
    return pd.DataFrame({"index": table["index"].astype(int), "name": table[names].astype(str)})


def _atlas_name(path: Path) -> str:
    """Alphanumeric atlas name for ``seg-<name>``: the BIDS ``atlas`` and ``desc`` entities, else the file stem."""
    entities = dict(part.split("-", 1) for part in path.name.split(".")[0].split("_") if "-" in part)
    name = entities.get("atlas", "") + entities.get("desc", "") or path.name.split(".")[0]
    return "".join(ch for ch in name if ch.isalnum())


def atlas_note(space: str, via: str | None) -> str:
    """How a user atlas defined on ``space`` reaches the participant (``via``: see :class:`Atlas`)."""
    if via is not None:
        return f"defined on {space}, warped through the participant's direct normalization to {space}"
    if space == BUNDLED_TEMPLATE:
        return f"defined on {space}, the normalization template"
    return (f"defined on {space}, approximated through MNI152NLin2009aSym ({space} is not in the TemplateFlow "
            "home; the templates differ by a few mm)")


def load_atlas(
    device: torch.device, path: str | Path | None = None, labels: str | Path | None = None, *,
    space: str | None = None, via: str | None = None,
) -> Atlas:
    """The default parcellation, or a user atlas (``--atlas FILE --atlas-labels TSV``).

    Parameters
    ----------
    device : torch.device
        Where the label image goes.
    path, labels : path-like or None
        A label image in template space and its TSV (``index`` and ``name`` or
        ``label`` columns); both or neither.
    space, via : str or None
        The template the user atlas is defined on (None: from its file name,
        see :func:`~neurolearn_cli.spaces.atlas_space`) and the TemplateFlow
        template it is warped through (see :class:`Atlas`).
    """
    from neurolearn_cli.engine.io import load_image

    if path is None and labels is None:
        folder = resources.files("neurolearn_cli") / "resources"
        with resources.as_file(folder / DEFAULT_ATLAS_FILE) as image_path, resources.as_file(folder / DEFAULT_LABELS_FILE) as table_path:
            image = load_image(image_path, device)
            table = pd.read_csv(table_path, sep="\t")[["index", "name"]]
        return Atlas(DEFAULT_ATLAS_NAME, image, table, "MNI152NLin2009aSym",
                     "derived from the bundled MNI152NLin2009aSym GM map by k-means (no third-party atlas)")
    if path is None or labels is None:
        raise InputError(path or labels, "--atlas and --atlas-labels must be given together")
    image = load_image(path, device)
    if image.data.dim() != 3:
        raise InputError(path, "an atlas must be a 3D label image")
    values = image.data
    if not bool((values == values.round()).all()) or bool((values < 0).any()):
        raise InputError(path, "an atlas must hold non-negative integer labels")
    table = _read_labels_table(Path(labels))
    present = set(torch.unique(values).long().tolist()) - {0}
    missing = present - set(table["index"].tolist())
    if missing:
        raise InputError(labels, f"labels {sorted(missing)[:5]} of the atlas are not in the table")
    space = space or atlas_space(Path(path), None)
    return Atlas(_atlas_name(Path(path)), image, table, space, atlas_note(space, via), via)

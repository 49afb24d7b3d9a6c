"""Initial affine alignment of a (possibly skull-on) T1w to the skull-less template.

A plain centre-of-mass start fails on skull-on scans: the head's centre sits
low when the neck is in the field of view, and an intensity-driven affine
stretches the template brain onto the scalp. The start here uses head
geometry: the brain's top lies a fixed distance below the vertex, and its x/y
centre is that of the head's top slab. That start assumes an upright head
whose Otsu foreground ends at the brain or a known scalp's thickness above it;
neither holds for a head tilted in its header or the scanner, nor for a scalp
bright enough to pass the threshold, so candidates around it (tilted, and
lowered by a scalp's thickness) are scored by how well the tissue-prior
mixture explains the image under each (:func:`search_start`), and the best
one starts the alignment. The affine is then estimated in the
spirit of SPM's tissue-prior registration: the coarse T1w is segmented under
the template priors placed by the current affine, and the subject's tissue
map (WM + GM/2 posteriors) is registered to the template's, so skull and
scalp, which the mixture assigns to the non-brain class, carry no weight.
A lesion mask leaves its voxels (on the coarse copy, every voxel it touches)
out of both the segmentation and the alignment.

Two kinds of input break the vertex rule and are recognised from the head's
foreground (:func:`field_of_view`): an already skull-stripped image (fewer
non-zero voxels than a head holds; the pipeline keeps its foreground as the
brain mask) and a field of view that cuts the top of the head (the foreground
reaches the grid's top face: the brain's top is at or above that face, so the
template's top is put there rather than a scalp's thickness below). A
neck-to-vertex field of view is cut to ``HEAD_HEIGHT_MM`` below the vertex
first (:func:`below_vertex`), so that neck and shoulders do not steer it,
and a strong intensity bias is divided out (:func:`bias_fit`) before
the start and its search are taken a second time. Voxels no brighter than
the air's noise (``NOISE_FLOOR_SDS`` times :func:`background_noise_sd`) are
set to zero first when that floor lies above the mixture's background level:
on a noisy scan the Rician floor of the air and the skull does, the mixture
then models them as tissue-like intensities, and the tissue alignment drifts
off. The same noise SD and the bias fit's white-matter mean give the
image's signal-to-noise ratio, which the pipeline checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from neurolearn_cli.engine.geometry import center_of_mass, euler_matrix, index_grid
from neurolearn_cli.engine.image import Grid, Image, conform_grid
from neurolearn_cli.engine.morphology import fill_holes, largest_component
from neurolearn_cli.engine.registration import LinearSettings, register_linear
from neurolearn_cli.engine.resample import resample
from neurolearn_cli.engine.threshold import otsu_threshold
from neurolearn_cli.engine.transforms import AffineTransform
from neurolearn_cli.smri.brainmask import grow
from neurolearn_cli.smri.priors import warp_priors
from neurolearn_cli.smri.segmentation import (
    CLASSES,
    Segmentation,
    background_level,
    class_mean_intensity,
    segment,
)
from neurolearn_cli.smri.template import Template

COARSE_MM = 3.0
HEAD_MM = 4.0
SCALP_TO_BRAIN_MM = 12.0
SLAB_MM = 60.0
HEAD_MIN_ML = 2500.0
AFFINE_SETTINGS = LinearSettings(levels_mm=(8.0, 4.0), iterations=(40, 20))
#: Shortest half-period (mm) of the bias field fitted on the coarse copy (before the start and in each alignment round).
COARSE_BIAS_FWHM_MM = 80.0
#: Smoothing of the priors in the first (broad) and second (sharp) alignment rounds.
BROAD_PRIOR_FWHM_MM, SHARP_PRIOR_FWHM_MM = 16.0, 6.0
#: Starts tried from the geometric one: (degrees about x, y, z; mm lowered), the start itself first. Pitch
#: (a nod) varies most between scans; the lowered ones put the brain's top a scalp's thickness below the vertex.
START_CANDIDATES = (
    ((0.0, 0.0, 0.0), 0.0),
    *(((pitch, 0.0, 0.0), 0.0) for pitch in (-40.0, -20.0, 20.0, 40.0)),
    *(((0.0, roll, 0.0), 0.0) for roll in (-20.0, 20.0)),
    *(((0.0, 0.0, yaw), 0.0) for yaw in (-20.0, 20.0)),
    *(((pitch, 0.0, 0.0), SCALP_TO_BRAIN_MM) for pitch in (0.0, -40.0, -20.0, 20.0, 40.0)),
)
#: Voxel size (mm) and EM iterations of the candidates' mixture fits.
SEARCH_MM, SEARCH_ITERATIONS = 6.0, 10
#: How far beyond the head's Otsu foreground the background starts (:func:`head_region`).
HEAD_MARGIN_MM = 6.0
#: The noise floor in noise SDs: Rayleigh-distributed air exceeds it with a chance of 1 %.
NOISE_FLOOR_SDS = 3.03
#: Fewest non-zero background voxels from which :func:`background_noise_sd` estimates the noise.
MIN_BACKGROUND_VOXELS = 1000
#: Height kept below the head's vertex for the initialization (:func:`below_vertex`): FSL's robustfov keeps
#: 170 mm; 10 mm more keeps the cerebellum (about 160 mm below the vertex) in view with a margin.
HEAD_HEIGHT_MM = 180.0


@dataclass(frozen=True)
class FieldOfView:
    """What the image holds: an already skull-stripped brain, and whether the top of the head is cut off."""

    skull_stripped: bool
    top_cropped: bool

    def describe(self) -> str:
        """The recognised input in words, for the log and the sidecars ("" for an ordinary skull-on head)."""
        parts = (["already skull-stripped"] if self.skull_stripped else []) + (
            ["top of the head outside the field of view"] if self.top_cropped else [])
        return "; ".join(parts)


@dataclass(frozen=True)
class Initialization:
    """Template-to-subject affine (pull-back: maps template world points to T1w world points) and the input kind.

    ``wm_snr``: the white matter's mean intensity over the air's noise SD on the
    ``COARSE_MM`` copy (None when the background holds no noise sample).
    ``air_floor``: ``NOISE_FLOOR_SDS`` noise SDs where that floor lies above the
    mixture's background level (a noisy scan's air is then in the model; see
    :func:`noisy_air`), else None.
    """

    transform: AffineTransform
    cost: float
    field_of_view: FieldOfView
    wm_snr: float | None
    air_floor: float | None = None


def coarse_copy(image: Image, spacing_mm: float = COARSE_MM) -> Image:
    """``image`` resampled by world coordinates onto an RAS grid of ``spacing_mm`` covering it."""
    corners = torch.tensor(
        [[i, j, k, 1.0] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=torch.float64, device=image.device
    )
    corners[:, :3] *= torch.tensor(image.shape3, dtype=torch.float64, device=image.device) - 1
    world = (image.affine @ corners.T).T[:, :3]
    size = world.max(0).values - world.min(0).values
    shape = tuple(math.ceil(s / spacing_mm) + 1 for s in size.tolist())
    grid = conform_grid(image.grid, (spacing_mm,) * 3, shape)
    return resample(image, grid, order="linear")


def slice_heights(grid: Grid) -> torch.Tensor:
    """World z (mm) of each axial slice of an RAS ``grid`` (as :func:`coarse_copy` makes), float64."""
    return grid.affine[2, 2] * torch.arange(grid.shape[2], dtype=torch.float64, device=grid.device) + grid.affine[2, 3]


def _top_and_centre(mask: torch.Tensor, grid: Grid, below_top_mm: float) -> tuple[float, torch.Tensor]:
    """World z of the mask's top (slice area >= 10 % of the largest) and the x/y centroid of the slab under it."""
    area = mask.sum(dim=(0, 1)).to(torch.float64)
    z_world = slice_heights(grid)
    top_index = int(torch.nonzero(area >= 0.1 * area.max()).max())
    top = float(z_world[top_index])
    slab = (z_world <= top - below_top_mm) & (z_world >= top - below_top_mm - SLAB_MM)
    weights = mask.to(torch.float64) * slab[None, None, :]
    idx = index_grid(mask.shape, mask.device)
    centre_index = (weights[..., None] * idx).sum(dim=(0, 1, 2)) / weights.sum().clamp_min(1e-9)
    centre = grid.affine[:3, :3] @ centre_index + grid.affine[:3, 3]
    return top, centre


def head_foreground(coarse: Image) -> torch.Tensor:
    """The Otsu foreground (boolean) of ``coarse``: the head, or the brain of a stripped image."""
    return coarse.data > otsu_threshold(coarse.data[coarse.data > 0], bins=128)


def field_of_view(coarse: Image) -> FieldOfView:
    """Recognise a stripped brain and a cut top from a ``HEAD_MM`` RAS copy (its last slice is the top face).

    Skull-stripped: the non-zero voxels hold less than a head (``HEAD_MIN_ML``;
    a raw scan's air is noise and a zero-filled one still holds the scalp).
    Top cut: the head's foreground covers at least a tenth of its largest
    axial area on the top face.
    """
    nonzero_ml = float((coarse.data != 0).sum()) * math.prod(coarse.spacing) / 1000.0
    head = head_foreground(coarse)
    top_area = float(head[:, :, -1].sum())
    return FieldOfView(skull_stripped=nonzero_ml < HEAD_MIN_ML,
                       top_cropped=top_area >= 0.1 * float(head.sum(dim=(0, 1)).max()))


def geometric_start(t1w: Image, template: Template) -> tuple[AffineTransform, FieldOfView]:
    """Translation (template -> T1w) putting the template brain under the head's vertex, and the field of view.

    The vertex is the top of :func:`head_foreground` on a ``HEAD_MM`` copy;
    the brain's top lies ``SCALP_TO_BRAIN_MM`` below it when that foreground
    is a head's size, at it when it is smaller (a stripped brain, or a head
    whose scalp falls under Otsu's threshold, as on the three real scans of
    the test data) or when the top of the head is cut off
    (:func:`field_of_view`). :func:`search_start` also tries the brain a
    scalp's thickness lower than this rule puts it.
    """
    coarse = coarse_copy(t1w, HEAD_MM)
    seen = field_of_view(coarse)
    head = head_foreground(coarse)
    head_ml = float(head.sum()) * HEAD_MM**3 / 1000.0
    offset = SCALP_TO_BRAIN_MM if head_ml > HEAD_MIN_ML and not seen.top_cropped else 0.0
    top, centre = _top_and_centre(head, coarse.grid, offset)
    brain = template.mask.data > 0.5
    t_top, t_centre = _top_and_centre(brain, template.mask.grid, 0.0)
    shift = centre - t_centre
    shift[2] = (top - offset) - t_top
    matrix = torch.eye(4, dtype=torch.float64, device=t1w.device)
    matrix[:3, 3] = shift
    return AffineTransform(matrix), seen


def tissue_contrast(posteriors: torch.Tensor) -> torch.Tensor:
    """The map registration aligns: WM probability plus half the GM probability."""
    return posteriors[1] + 0.5 * posteriors[0]


def affine_from_tissues(
    coarse: Image,
    template: Template,
    start: AffineTransform,
    *,
    prior_fwhm_mm: float,
    settings: LinearSettings = AFFINE_SETTINGS,
    lesion: torch.Tensor | None = None,
) -> tuple[AffineTransform, float]:
    """One round: segment ``coarse`` under priors placed by ``start``, then align tissue maps (affine, NCC).

    The moving image is the subject's WM + GM/2 posterior map, the fixed one
    the template's, so skull and scalp carry no weight in the alignment;
    ``lesion`` (boolean, ``coarse``'s grid) is left out of both. Returns the affine and its cost.
    """
    priors = warp_priors(template, coarse.grid, start.inverse(), fwhm_mm=prior_fwhm_mm)
    seg = segment(coarse, priors, sample_mm=max(coarse.spacing), max_iterations=20, bias_fwhm_mm=COARSE_BIAS_FWHM_MM,
                  exclude=lesion)
    fixed = tissue_contrast(torch.stack([template.gm.data, template.wm.data]))
    matrix, cost = register_linear(
        fixed,
        template.gm.affine,
        tissue_contrast(seg.posteriors),
        coarse.affine,
        start.matrix,
        template_centre(template),
        dof=12,
        metric="ncc",
        moving_mask=None if lesion is None else ~lesion,
        settings=settings,
    )
    return AffineTransform(matrix), cost


def template_centre(template: Template) -> torch.Tensor:
    """World centre (mm) of the template's tissue map: the centre of rotation of every alignment."""
    return center_of_mass(tissue_contrast(torch.stack([template.gm.data, template.wm.data])), template.gm.affine)


def candidate_starts(start: AffineTransform, centre: torch.Tensor) -> list[AffineTransform]:
    """``start`` moved by each of ``START_CANDIDATES``: tilted about the template point ``centre``, then lowered.

    A candidate maps a template point ``p`` to ``start(R (p - c) + c - (0, 0, d))``:
    the template brain tilted by ``R`` and lowered by ``d`` mm before the
    start places it in the head. The first candidate is ``start`` itself.
    """
    candidates = []
    for angles, lowered_mm in START_CANDIDATES:
        move = torch.eye(4, dtype=torch.float64, device=start.matrix.device)
        move[:3, :3] = euler_matrix(torch.tensor([math.radians(a) for a in angles], dtype=torch.float64,
                                                 device=start.matrix.device))
        move[:3, 3] = centre - move[:3, :3] @ centre
        move[2, 3] -= lowered_mm
        candidates.append(AffineTransform(start.matrix @ move))
    return candidates


def search_start(image: Image, template: Template, start: AffineTransform,
                 lesion: torch.Tensor | None = None) -> AffineTransform:
    """The candidate of :func:`candidate_starts` under whose priors the mixture best explains ``image``.

    Each candidate places the broad template priors on a ``SEARCH_MM`` copy
    of the T1w and a short mixture fit (no bias field) gives the mean
    log-likelihood of the voxels: the tissue-prior model's evidence that SPM's
    affine registration maximises, comparable between candidates because the
    voxels are the same. It finds a head tilted (in its header or in the
    scanner) beyond the ~20 degrees a local optimizer recovers, and a brain
    lying a scalp's thickness below the vertex, where the tissue alignment
    from the start alone locks onto the scalp. ``lesion`` (boolean, ``image``'s grid) is left out.
    """
    coarse = coarse_copy(image, SEARCH_MM)
    excluded = None if lesion is None else coarse_copy(image.with_data(lesion.float()), SEARCH_MM).data > 0
    candidates = candidate_starts(start, template_centre(template).to(start.matrix.device))
    scores = []
    for candidate in candidates:
        priors = warp_priors(template, coarse.grid, candidate.inverse(), fwhm_mm=BROAD_PRIOR_FWHM_MM)
        seg = segment(coarse, priors, sample_mm=SEARCH_MM, max_iterations=SEARCH_ITERATIONS, bias_fwhm_mm=math.inf,
                      exclude=excluded)
        scores.append(seg.log_likelihood)
    return candidates[max(range(len(scores)), key=scores.__getitem__)]


def below_vertex(coarse: Image, height_mm: float) -> Image:
    """``coarse`` (an RAS copy) without its slices more than ``height_mm`` below the head's vertex.

    A robustfov-like cut: a neck-to-vertex field of view adds neck and
    shoulders whose voxels outnumber the brain's, shift Otsu's head threshold
    and the mixture's non-brain classes, and so mislead the start and its
    search into placing the brain on the scalp. Cut to a fixed height below
    the vertex, a head with and without its neck gives the initialization the
    same voxels.
    """
    top, _ = _top_and_centre(head_foreground(coarse), coarse.grid, 0.0)
    first = int((slice_heights(coarse.grid) < top - height_mm).sum())
    affine = coarse.affine.clone()
    affine[:3, 3] += affine[:3, 2] * first
    return Image(coarse.data[:, :, first:].contiguous(), affine)


def head_region(coarse: Image) -> torch.Tensor:
    """The head on an RAS copy (boolean): Otsu's foreground, its largest part, holes filled, grown by ``HEAD_MARGIN_MM``.

    Holes are filled in 3D and in every axial slice, so the dark skull and
    CSF enclosed by the scalp stay in: outside it lies air only.
    """
    head = fill_holes(fill_holes(largest_component(head_foreground(coarse))), plane_axis=2)
    return grow(head, coarse.spacing, HEAD_MARGIN_MM)


def background_noise_sd(coarse: Image) -> float | None:
    """Noise SD of ``coarse`` measured in the air outside :func:`head_region` (None when there is no sample).

    A magnitude image's air is Rayleigh-distributed with the noise SD as its
    scale: its median is ``sd * sqrt(2 ln 2)`` (robust to ghosts). None when
    the background is mostly zeros (a zero-filled or defaced scan: its few
    non-zero voxels are no noise sample) or holds fewer than
    ``MIN_BACKGROUND_VOXELS`` non-zero voxels (a tight field of view).
    """
    background = coarse.data[~head_region(coarse)]
    air = background[background > 0]
    if air.numel() < max(MIN_BACKGROUND_VOXELS, background.numel() // 2):
        return None
    return float(air.median()) / math.sqrt(2.0 * math.log(2.0))


def noisy_air(t1w: Image, floor: float) -> torch.Tensor:
    """The air around the head on ``t1w``'s grid (boolean): outside :func:`head_region`, no brighter than ``floor``.

    For the tissue mixture to leave out when the air's Rician noise lies above
    its background level (:attr:`Initialization.air_floor`). Modelled, that air
    took three of the non-brain class's four Gaussians from the skull and scalp,
    and a noisy scan's white matter went in part to grey matter and its
    extra-cerebral tissue to CSF. Dark voxels inside the head (CSF, bone) stay
    in the model.
    """
    coarse = coarse_copy(t1w, COARSE_MM)
    head = resample(coarse.with_data(head_region(coarse).float()), t1w.grid).data >= 0.5
    return ~head & (t1w.data <= floor)


def bias_fit(coarse: Image, template: Template, start: AffineTransform,
             lesion: torch.Tensor | None = None) -> Segmentation:
    """Mixture fit with a smooth bias field on ``coarse`` under the broad priors placed by ``start``.

    A strong bias moves Otsu's head foreground (so the geometric start) and
    misleads the start search, which fits no bias field; the tissue alignment
    does not recover the tens of mm that follow. Corrected once under the
    first search's placement (whose tilt keeps the priors from teaching the
    field the brain's shape), the image (``.corrected``) gives both a start
    near the unbiased one. ``lesion`` (boolean, ``coarse``'s grid) is left out of the fit.
    """
    priors = warp_priors(template, coarse.grid, start.inverse(), fwhm_mm=BROAD_PRIOR_FWHM_MM)
    return segment(coarse, priors, sample_mm=max(coarse.spacing), max_iterations=20,
                   bias_fwhm_mm=COARSE_BIAS_FWHM_MM, exclude=lesion)


def initialize(t1w: Image, template: Template, lesion: Image | None = None) -> Initialization:
    """Robust template -> T1w affine for skull-on or skull-stripped T1w images.

    On a ``COARSE_MM`` copy cut to ``HEAD_HEIGHT_MM`` below the vertex and
    zero at and below ``NOISE_FLOOR_SDS`` times its :func:`background_noise_sd` where that lies above the
    mixture's background level (the field of view is judged before): geometric start and the best of its
    candidate tilts and depths (:func:`search_start`); the copy corrected for bias under that placement
    (:func:`bias_fit`) and the start and search again on it; then two
    rounds of :func:`affine_from_tissues`: broad priors first, sharper priors second.
    ``lesion`` (a mask on ``t1w``'s grid) is left out of every step.
    """
    coarse = below_vertex(coarse_copy(t1w, COARSE_MM), HEAD_HEIGHT_MM)
    seen = field_of_view(coarse_copy(coarse, HEAD_MM))
    noise_sd = background_noise_sd(coarse)
    air_floor = None
    if noise_sd is not None and NOISE_FLOOR_SDS * noise_sd > background_level(coarse.data):
        air_floor = NOISE_FLOOR_SDS * noise_sd
        coarse = coarse.with_data(torch.where(coarse.data > air_floor, coarse.data, 0.0))
    excluded = None if lesion is None else resample(lesion, coarse.grid).data > 0
    rough, _ = geometric_start(coarse, template)
    rough = search_start(coarse, template, rough, excluded)
    fitted = bias_fit(coarse, template, rough, excluded)
    coarse = fitted.corrected
    wm_snr = None if noise_sd is None else class_mean_intensity(fitted.mixture, CLASSES.index("WM")) / noise_sd
    start, _ = geometric_start(coarse, template)
    start = search_start(coarse, template, start, excluded)
    first, _ = affine_from_tissues(coarse, template, start, prior_fwhm_mm=BROAD_PRIOR_FWHM_MM, lesion=excluded)
    transform, cost = affine_from_tissues(coarse, template, first, prior_fwhm_mm=SHARP_PRIOR_FWHM_MM, lesion=excluded)
    return Initialization(transform, cost, seen, wm_snr, air_floor)

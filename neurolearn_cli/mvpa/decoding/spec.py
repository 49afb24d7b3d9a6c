"""The decoding spec (``mode: within``): frozen, strictly validated, saved beside the results.

Example::

    name: faces
    mode: within
    task: oneback
    space: MNI152NLin2009aSym
    res: "2"
    samples: {unit: block}
    target: {column: trial_type, positive: [face]}
    glm: {confounds: [motion, wm_csf, non_steady_state], high_pass: 0.008}
    mask: {labels: [L_gm_20, R_gm_71]}
    model: {name: svm}
    validation: {cv: auto, permutations: 100}
    seed: 0
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, model_validator

from neurolearn_cli.errors import UsageError
from neurolearn_cli.mvpa.spec import (
    ModelSpec,
    SelectionSpec,
    _Frozen,
    read_yaml_spec,
    validate_spec,
)


class SampleSpec(_Frozen):
    """What one sample is: a ``trial`` (one event) or a ``block`` of events.

    Blocks come from ``block_column`` of ``events.tsv`` when given, else they
    are runs of consecutive events of one condition whose gaps (onset minus
    the previous event's end) stay below ``block_gap`` seconds.
    """

    unit: Literal["block", "trial"] = "block"
    block_column: str | None = None
    block_gap: Annotated[float, Field(gt=0)] = 4.0


class DecodingTarget(_Frozen):
    """The ``events.tsv`` column to decode.

    ``positive``: these conditions against all other decoded ones (two
    classes); ``include``: the conditions decoded (default all). Conditions
    left out are still modelled in the GLM.
    """

    column: str = "trial_type"
    positive: list[str] | None = None
    include: list[str] | None = None


class GLMSpec(_Frozen):
    """The first-level model of each run behind the LSS estimates.

    ``confounds`` are column names of ``desc-confounds_timeseries.tsv`` or
    presets: ``motion`` (6 parameters), ``motion24``, ``wm_csf``,
    ``global_signal``, ``acompcor`` (first 5), ``non_steady_state`` and
    ``motion_outliers`` (their spike columns, when present). ``high_pass`` is
    the cosine drift cut-off in Hz; ``slice_time_ref`` the fraction of the TR
    each volume's time refers to.
    """

    hrf: Literal["glover", "spm"] = "glover"
    confounds: list[str] = Field(default_factory=lambda: ["motion", "wm_csf", "non_steady_state"])
    high_pass: Annotated[float, Field(gt=0)] = 0.008
    slice_time_ref: Annotated[float, Field(ge=0, le=1)] = 0.5


class MaskSpec(_Frozen):
    """The voxels decoded: a mask ``image`` (non-zero voxels), or ``labels`` of an atlas.

    ``atlas`` (a label image in the template space; default: the bundled
    neurolearnGM108) with ``atlas_labels`` (its ``index``/``name`` table);
    ``labels`` lists parcel names or indices (default: every parcel).
    """

    image: Path | None = None
    atlas: Path | None = None
    atlas_labels: Path | None = None
    labels: list[str | int] | None = None

    @model_validator(mode="after")
    def _image_or_atlas(self) -> MaskSpec:
        if self.image is not None and (self.atlas is not None or self.labels is not None):
            raise ValueError("give either image, or atlas/labels")
        return self


class DecodingValidation(_Frozen):
    """Cross-validation and permutation test.

    ``cv``: ``block`` (``folds`` contiguous stretches of whole blocks; auto:
    the most, up to 5, that leave every class in every training and test
    part), ``run`` (leave one run out) or ``auto`` (run when there are
    several runs, else block). Training samples within ``buffer`` seconds of
    the test stretch are left out (estimates of neighbouring blocks
    correlate). ``inner`` folds (grouped by block) choose hyperparameters
    when the model has a grid.
    """

    cv: Literal["auto", "block", "run"] = "auto"
    folds: Annotated[int, Field(ge=2)] | Literal["auto"] = "auto"
    buffer: Annotated[float, Field(ge=0)] = 20.0
    inner: Annotated[int, Field(ge=2)] = 3
    metric: Literal["auto", "roc_auc", "balanced_accuracy", "accuracy"] = "auto"
    permutations: Annotated[int, Field(ge=0)] = 100


class DecodingSpec(_Frozen):
    """One within-participant decoding analysis.

    The default model is a linear SVM with C = 1 and no search: with far
    fewer samples than voxels the classes are separable and C barely
    matters; give ``model.grid`` to search it in inner folds.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    mode: Literal["within"]
    task: str | None = None
    space: str = "MNI152NLin2009aSym"
    res: str | None = "2"
    derivatives: Path | None = None
    samples: SampleSpec = SampleSpec()
    target: DecodingTarget = DecodingTarget()
    glm: GLMSpec = GLMSpec()
    mask: MaskSpec = MaskSpec()
    selection: SelectionSpec | None = None
    model: ModelSpec = ModelSpec(name="svm", params={"C": 1.0}, grid={})
    validation: DecodingValidation = DecodingValidation()
    seed: int = 0

    @model_validator(mode="after")
    def _atlas_needs_template_space(self) -> DecodingSpec:
        if self.space == "T1w" and self.mask.image is None:
            raise ValueError("space T1w needs mask.image (or --mask): the atlas is in template space")
        return self


def decoding_spec_from_dict(payload: Any, source: str | Path = "spec") -> DecodingSpec:
    """Validate a mapping as a :class:`DecodingSpec` (see :func:`~neurolearn_cli.mvpa.spec.validate_spec`)."""
    return validate_spec(DecodingSpec, payload, source)


def resolve_decoding_paths(spec: DecodingSpec, base: Path) -> DecodingSpec:
    """Make the spec's relative paths absolute, taken from ``base``."""
    def absolute(path: Path | None) -> Path | None:
        return None if path is None else base / path

    mask = spec.mask.model_copy(update={"image": absolute(spec.mask.image), "atlas": absolute(spec.mask.atlas),
                                        "atlas_labels": absolute(spec.mask.atlas_labels)})
    return spec.model_copy(update={"mask": mask, "derivatives": absolute(spec.derivatives)})


def load_decoding_spec(path: Path, *, mask: Path | None = None, permutations: int | None = None,
                       name: str | None = None, seed: int | None = None) -> DecodingSpec:
    """Read and validate a YAML decoding spec; the options given override its fields.

    ``mask`` (the ``--mask`` option, taken from the working directory)
    replaces the spec's mask. Relative paths in the file are taken from its folder.

    Raises
    ------
    InputError
        An unreadable or invalid spec (naming the file and the field).
    UsageError
        A spec of another mode (a group analysis).
    """
    payload = read_yaml_spec(path)
    if isinstance(payload, dict):
        if payload.get("mode") != "within":
            raise UsageError(f"{path}: mode '{payload.get('mode', 'between')}' is a group-level analysis; "
                             "the participant level needs a spec with mode: within")
        overrides = {"name": name, "seed": seed, "mask": None if mask is None else {"image": str(Path(mask).resolve())}}
        payload = {**payload, **{k: v for k, v in overrides.items() if v is not None}}
        if permutations is not None:
            validation = payload.get("validation")
            payload["validation"] = {**(validation if isinstance(validation, dict) else {}), "permutations": permutations}
    return resolve_decoding_paths(decoding_spec_from_dict(payload, path), Path(path).parent)


def decoding_spec_to_yaml(spec: DecodingSpec, folder: Path) -> str:
    """The spec as YAML text, keys in declaration order, paths relative to ``folder``.

    ``folder`` is where the YAML is written, so :func:`load_decoding_spec`
    reads the file back to the same spec, and the same data under two
    different folders give identical bytes, as the rest of the derivatives do.
    """
    def relative(path: Path | None) -> str | None:
        return None if path is None else os.path.relpath(path, folder)

    payload = spec.model_dump(mode="json")
    payload["derivatives"] = relative(spec.derivatives)
    payload["mask"].update(image=relative(spec.mask.image), atlas=relative(spec.mask.atlas),
                           atlas_labels=relative(spec.mask.atlas_labels))
    return yaml.safe_dump(payload, sort_keys=False)

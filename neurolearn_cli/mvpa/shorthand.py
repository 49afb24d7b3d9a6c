"""Build a spec from command-line options (the shorthand without a spec file)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from neurolearn_cli.errors import InputError, UsageError
from neurolearn_cli.mvpa.spec import AnalysisSpec, read_yaml_spec, resolve_paths, spec_from_dict

if TYPE_CHECKING:
    from neurolearn_cli.config import RunConfig

DERIVATIVE_KINDS = ("morph", "connectivity", "iqm")


def _cv(value: str) -> int | str:
    if value in ("logo", "loo"):
        return value
    if value.isdigit():
        return int(value)
    raise UsageError(f"--cv {value}: expected a number of folds, logo or loo")


def _read(spec_file: Path) -> dict[str, Any]:
    payload = read_yaml_spec(spec_file)
    if not isinstance(payload, dict):
        raise InputError(spec_file, "the spec must be a mapping of fields")
    return payload


def build_spec(
    spec_file: Path | None = None,
    *,
    features: str | None = None,
    target: str | None = None,
    model: str | None = None,
    cv: str | None = None,
    inner_cv: int | None = None,
    group_by: str | None = None,
    permutations: int | None = None,
    name: str | None = None,
    seed: int | None = None,
    derivatives: list[Path] | None = None,
) -> AnalysisSpec:
    """The spec from ``spec_file`` (when given) with the options given overriding its fields.

    Without a file, ``features`` and ``target`` are required; ``features``
    is a derivative kind (read from ``derivatives``, one folder per site) or
    a TSV/CSV path. The name defaults to ``<target>_<model>``.

    Raises
    ------
    UsageError
        Missing or contradictory options.
    InputError
        An unreadable spec file.
    SpecError
        An invalid spec (naming the file and the field).
    """
    payload = _read(spec_file) if spec_file is not None else {}
    if payload.get("mode") == "within":
        raise UsageError(f"{spec_file}: mode 'within' decodes within each participant; run it at the participant level")
    base = spec_file.parent if spec_file is not None else Path.cwd()
    if spec_file is None and (features is None or target is None):
        raise UsageError("mvpa needs --spec, or both --features and --target")
    if features is not None:
        if features in DERIVATIVE_KINDS:
            payload["features"] = {"kind": features, "sources": [str(d) for d in derivatives or []]}
        elif derivatives:
            raise UsageError("--derivatives is for --features morph, connectivity or iqm, not a table")
        else:
            payload["features"] = {"kind": "table", "sources": [str(Path(features).resolve())]}
    if target is not None:
        payload["target"] = {**payload.get("target", {}), "column": target}
    if model is not None:
        payload["model"] = {"name": model}
    validation = dict(payload.get("validation", {}))
    given = (("outer", None if cv is None else _cv(cv)), ("inner", inner_cv), ("group_by", group_by),
             ("permutations", permutations))
    for key, value in given:
        if value is not None:
            validation[key] = value
    payload["validation"] = validation
    if seed is not None:
        payload["seed"] = seed
    if name is not None or "name" not in payload:
        model_name = payload.get("model", {}).get("name", "svm") if isinstance(payload.get("model"), dict) else "svm"
        target_name = payload.get("target", {}).get("column", "target") if isinstance(payload.get("target"), dict) else "target"
        payload["name"] = name or f"{target_name}_{model_name}"
    return resolve_paths(spec_from_dict(payload, spec_file or "command line"), base)


def spec_from_config(config: RunConfig) -> AnalysisSpec:
    """The spec of a run: :func:`build_spec` from its ``--spec`` and the mvpa options given.

    ``--seed`` overrides the spec's seed only when given; else the spec's own applies.
    """
    seed = config.seed if "seed" in config.model_fields_set else None
    return build_spec(config.spec, features=config.features, target=config.target, model=config.model,
                      cv=config.cv, inner_cv=config.inner_cv, group_by=config.group_by,
                      permutations=config.permutations, name=config.name, seed=seed,
                      derivatives=list(config.derivatives) or None)

"""Output spaces: parsed once into typed values, resolutions honoured, unknown ones refused.

Templates come from the bundled copy or a local TemplateFlow home; the tests
of the home's listing and of end-to-end runs into it are in ``test_templateflow.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from neurolearn_cli.config import build_config
from neurolearn_cli.errors import UsageError
from neurolearn_cli.spaces import OutputSpace, check_available, first_template, parse_output_space

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("spec", "space", "entities"),
    [
        ("MNI152NLin2009aSym:res-2", OutputSpace("MNI152NLin2009aSym", "2"),
         {"space": "MNI152NLin2009aSym", "res": "2"}),
        ("MNI152NLin2009aSym:res-01", OutputSpace("MNI152NLin2009aSym", "1"),
         {"space": "MNI152NLin2009aSym", "res": "1"}),
        ("MNI152NLin2009aSym:res-native", OutputSpace("MNI152NLin2009aSym"), {"space": "MNI152NLin2009aSym"}),
        ("MNI152NLin2009aSym", OutputSpace("MNI152NLin2009aSym"), {"space": "MNI152NLin2009aSym"}),
        ("T1w", OutputSpace("T1w"), {"space": "T1w"}),
    ],
)
def test_parse_output_space(spec, space, entities):
    parsed = parse_output_space(spec)
    assert parsed == space and parsed.entities == entities
    assert parse_output_space(str(parsed)) == parsed


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("MNI152NLin2009aSym:den-91k", ["bad modifier 'den-91k'"]),
        ("MNI152NLin2009aSym:res-1:res-2", ["bad modifier 'res-2'"]),
        ("MNI152NLin2009aSym:res-", ["bad modifier 'res-'"]),
        ("T1w:res-2", ["T1w takes no modifiers"]),
        ("../MNI:res-2", ["a space is a template name or T1w"]),
    ],
)
def test_bad_syntax_is_refused(spec, words):
    with pytest.raises(ValueError) as error:
        parse_output_space(spec)
    for word in words:
        assert word in str(error.value)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("Foo:res-9", ["unknown output space 'Foo:res-9'", "no template Foo in the TemplateFlow home /nowhere",
                       "available: MNI152NLin2009aSym (res-1, res-2 or res-native), T1w"]),
        ("MNI152NLin2009aSym:res-9", ["no resolution res-9", "res-1, res-2"]),
        ("MNI152NLin2009aSym:cohort-2", ["has no cohorts"]),
    ],
)
def test_unavailable_template_or_resolution_is_refused(spec, words):
    with pytest.raises(ValueError) as error:
        check_available(parse_output_space(spec), {}, Path("/nowhere"))
    message = str(error.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_config_holds_typed_spaces_and_saves_their_spelling(tmp_path: Path):
    values = {"bids_dir": tmp_path / "bids", "output_dir": tmp_path / "out",
              "output_spaces": ["MNI152NLin2009aSym:res-1", "T1w", "T1w"]}
    config = build_config(values, set(values), None)
    assert config.output_spaces == (OutputSpace("MNI152NLin2009aSym", "1"), OutputSpace("T1w"))
    assert config.model_dump(mode="json")["output_spaces"] == ["MNI152NLin2009aSym:res-1", "T1w"]
    assert first_template(config.output_spaces) == OutputSpace("MNI152NLin2009aSym", "1")


def test_config_refuses_an_unknown_space(tmp_path: Path):
    values = {"bids_dir": tmp_path / "bids", "output_dir": tmp_path / "out", "output_spaces": ["Foo:res-9"],
              "templateflow_dir": tmp_path}
    with pytest.raises(UsageError) as error:
        build_config(values, set(values), None)
    message = str(error.value)
    assert message.startswith("--output-spaces: unknown output space 'Foo:res-9'") and "\n" not in message
    assert f"TemplateFlow home {tmp_path} " in message


def test_cli_refuses_an_unknown_space_before_any_work(cli, make_bids, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(tmp_path))
    bids = make_bids()
    out = tmp_path / "out"
    code, _, err = cli(str(bids), str(out), "participant", "--output-spaces", "Foo:res-9")
    assert code == 2
    assert err.strip().count("\n") == 0 and "Foo:res-9" in err and "available" in err
    assert not out.exists()


def _anatomy(t1w_grid, template_grids):
    from neurolearn_cli.engine.image import Image
    from neurolearn_cli.engine.transforms import AffineTransform
    from neurolearn_cli.fmri.pipeline import Anatomy, TemplateSpace

    empty = Image(torch.zeros(t1w_grid.shape), t1w_grid.affine)
    identity = AffineTransform(torch.eye(4, dtype=torch.float64))
    return Anatomy(t1w=empty, mask=empty, tissues={}, templates={"MNI152NLin2009aSym": TemplateSpace(
        identity, template_grids)}, atlas_template="MNI152NLin2009aSym", atlas_to_t1w=identity)


def test_output_grid_honours_the_resolution():
    from neurolearn_cli.engine.image import Grid
    from neurolearn_cli.fmri.pipeline import output_grid
    from neurolearn_cli.smri.template import template_grid

    grids = {"1": template_grid(CPU, 1), "2": template_grid(CPU, 2)}
    t1w = Grid((40, 48, 44), torch.diag(torch.tensor([0.7, 0.7, 0.7, 1.0], dtype=torch.float64)))
    bold = Grid((20, 22, 18), torch.diag(torch.tensor([3.0, 3.0, 3.3, 1.0], dtype=torch.float64)))
    anatomy = _anatomy(t1w, grids)

    res1 = output_grid(parse_output_space("MNI152NLin2009aSym:res-1"), anatomy, bold)
    assert res1 == grids["1"] and res1.spacing == (1.0, 1.0, 1.0) and res1.shape == (197, 233, 189)
    assert output_grid(parse_output_space("MNI152NLin2009aSym:res-2"), anatomy, bold) == grids["2"]
    native = output_grid(parse_output_space("MNI152NLin2009aSym"), anatomy, bold)
    assert native.spacing == pytest.approx((3.0, 3.0, 3.3))
    assert native.shape == (66, 78, 58)  # the template's 197 x 233 x 189 mm at the BOLD's voxel size
    t1w_space = output_grid(parse_output_space("T1w"), anatomy, bold)
    assert t1w_space.spacing == pytest.approx((3.0, 3.0, 3.3)) and t1w_space.shape == (10, 12, 10)


def test_template_grids_are_the_templates_own():
    from neurolearn_cli.smri.template import load_template, template_grid

    for resolution in (1, 2):
        assert template_grid(CPU, resolution) == load_template(CPU, resolution).t1w.grid


def test_planned_names_follow_the_space(make_bids):
    from neurolearn_cli.dataset.query import plan_dataset
    from neurolearn_cli.fmri.workflow import planned_entities

    run = plan_dataset(make_bids(("01",))).participants[0].bold[0]
    spaces = [parse_output_space(s) for s in ("MNI152NLin2009aSym:res-1", "MNI152NLin2009aSym", "T1w")]
    entities = planned_entities(run, spaces, "atlas")
    assert entities["bold_MNI152NLin2009aSym:res-1"]["res"] == "1"
    assert "res" not in entities["bold_MNI152NLin2009aSym"]
    assert entities["bold_T1w"]["space"] == "T1w" and "res" not in entities["bold_T1w"]
    assert entities["mean"]["res"] == "1"  # parcel time series come from the first template space


@pytest.mark.parametrize(
    ("spec", "entities"),
    [
        ("fsnative", {"space": "fsnative"}),
        ("fsaverage5", {"space": "fsaverage5"}),
        ("fsaverage", {"space": "fsaverage"}),
        ("fsLR", {"space": "fsLR", "den": "32k"}),
        ("fsLR:den-32k", {"space": "fsLR", "den": "32k"}),
    ],
)
def test_surface_spaces_are_typed_and_kept_apart_from_volumes(spec, entities):
    from neurolearn_cli.spaces import standard_spaces, surface_spaces, volume_spaces

    space = parse_output_space(spec)
    assert space.entities == entities and space.is_surface and not space.is_template
    assert parse_output_space(str(space)) == space
    spaces = (parse_output_space("MNI152NLin2009aSym:res-2"), space, parse_output_space("T1w"))
    assert surface_spaces(spaces) == (space,) and space not in volume_spaces(spaces)
    assert first_template(spaces) == spaces[0] and standard_spaces(spaces) == ()


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("fsLR:den-164k", ["fsLR is offered at den-32k"]),
        ("fsaverage5:den-10k", ["no den- modifier"]),
        ("fsnative:den-32k", ["fsnative takes no modifiers"]),
        ("fsaverage:res-2", ["bad modifier 'res-2' (expected den-<label>)"]),
    ],
)
def test_bad_surface_spaces_are_refused(spec, words):
    with pytest.raises(ValueError) as error:
        parse_output_space(spec)
    for word in words:
        assert word in str(error.value)


def test_surface_output_names_follow_fmriprep(make_bids):
    from neurolearn_cli.dataset.query import plan_dataset
    from neurolearn_cli.derivatives import build_relpath
    from neurolearn_cli.fmri.workflow import planned_entities, surface_role

    run = plan_dataset(make_bids(("01",))).participants[0].bold[0]
    spaces = [parse_output_space(s) for s in ("fsnative", "fsLR", "T1w")]
    entities = planned_entities(run, spaces, "atlas")
    names = {role: build_relpath(e) for role, e in entities.items()}
    assert names[surface_role(spaces[0], "L")] == "sub-01/func/sub-01_task-rest_hemi-L_space-fsnative_bold.func.gii"
    assert names[surface_role(spaces[1], "R")] == "sub-01/func/sub-01_task-rest_hemi-R_space-fsLR_den-32k_bold.func.gii"
    assert "bold_fsnative" not in entities and "bold_T1w" in entities and "mean" not in entities

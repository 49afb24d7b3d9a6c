"""A lesion mask in the tissue model: left out of the mixture's fit, no tissue counted inside, its own label."""

from __future__ import annotations

import pytest
import torch

from neurolearn_cli.engine.image import Image
from neurolearn_cli.smri.segmentation import class_mean_intensity, segment
from neurolearn_cli.smri.tissues import LESION_LABEL, brain_tissues, hard_labels, label_table


@pytest.fixture(scope="module")
def lesioned(phantom: dict) -> tuple[Image, torch.Tensor]:
    """The phantom with a 14 mm ball of its WM replaced by lesion-like intensity (between CSF and GM)."""
    image = phantom["image"]
    index = torch.stack(torch.meshgrid(*[torch.arange(n) for n in image.shape3], indexing="ij"), -1).float()
    lesion = ((index - torch.tensor([22.0, 30.0, 24.0])) * 2.5).norm(dim=-1) < 14.0
    assert bool((phantom["labels"][lesion] == 1).all())
    noise = torch.randn(int(lesion.sum()), generator=torch.Generator().manual_seed(1))
    data = image.data.clone()
    data[lesion] = (40.0 + 6.0 * noise) * phantom["bias"][lesion]
    return image.with_data(data), lesion


def test_lesion_neither_pulls_the_class_means_nor_holds_tissue(phantom: dict, lesioned) -> None:
    image, lesion = lesioned
    clean = segment(phantom["image"], phantom["priors"], mrf_beta=0.3)
    counted = segment(image, phantom["priors"], mrf_beta=0.3)
    excluded = segment(image, phantom["priors"], mrf_beta=0.3, exclude=lesion)
    for k in range(3):
        truth = class_mean_intensity(clean.mixture, k)
        assert class_mean_intensity(excluded.mixture, k) == pytest.approx(truth, rel=0.005)
    assert abs(class_mean_intensity(counted.mixture, 0) / class_mean_intensity(clean.mixture, 0) - 1) > 0.015
    assert float(counted.posteriors[:3][:, lesion].sum(0).min()) > 0.9  # without the mask: counted as tissue
    assert float(excluded.posteriors[:, lesion].abs().max()) == 0.0
    assert float((excluded.corrected.data[lesion] / image.data[lesion]).std()) < 0.05  # still bias-corrected


def test_lesion_is_its_own_label_and_no_tissue() -> None:
    posteriors = torch.zeros(4, 7, 8, 9)
    posteriors[1] = 0.8
    posteriors[3] = 0.2
    lesion = torch.zeros(7, 8, 9, dtype=torch.bool)
    lesion[2:4, 3:6, 4:7] = True
    mask = Image(torch.ones(7, 8, 9), torch.eye(4, dtype=torch.float64))
    tissues = brain_tissues(posteriors, mask, lesion)
    assert float(tissues[:, lesion].abs().max()) == 0.0
    assert torch.allclose(tissues.sum(0)[~lesion], torch.ones(int((~lesion).sum())))
    dseg = hard_labels(tissues, mask, torch.full((7, 8, 9), 100.0), 150.0, lesion).data
    assert torch.all(dseg[lesion] == LESION_LABEL) and torch.all(dseg[~lesion] == 2)
    assert label_table(lesion=True).to_dict("list") == {"index": [1, 2, 3, 4], "name": ["GM", "WM", "CSF", "lesion"]}

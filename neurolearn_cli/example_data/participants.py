"""Who is in the example dataset: demographics, group, site and atrophy severity.

Group and site follow the participant's index (control, patient, control,
patient, ... and two participants per site in turn), so any number of
participants is balanced and participant ``k`` is the same whatever the total.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Site:
    """A scanner: its name in the sidecars and how its images differ from the other site's.

    ``t1_gamma`` bends the T1w contrast, ``*_scale`` sets the stored intensity
    and ``*_noise`` the thermal noise, relative to the tissue signal;
    ``bias_spread`` is the receive-bias field's strength and ``gm_offset`` the
    fraction of grey matter the scanner's segmentation-relevant contrast moves
    to CSF everywhere (a shift in morphometry; negative: more GM).
    """

    name: str
    manufacturer: str
    model: str
    t1_scale: float
    t1_gamma: float
    t1_noise: float
    bold_scale: float
    bold_noise: float
    bias_spread: float = 0.09
    gm_offset: float = 0.0


SITES: dict[str, Site] = {
    "siteA": Site("siteA", "Siemens", "Prisma", 1000.0, 1.0, 0.025, 100.0, 0.012),
    "siteB": Site("siteB", "Philips", "Achieva dStream", 1450.0, 0.85, 0.04, 130.0, 0.016),
}


#: How far a named site's scanner may depart from siteA's at ``--site-effect 1``.
SITE_SPREAD = {"t1_scale": 0.4, "t1_gamma": 0.15, "t1_noise": 0.8, "bold_scale": 0.4, "bold_noise": 0.8,
               "bias_spread": 0.8, "gm_offset": 0.04}


def site_code(name: str) -> int:
    """A stable integer from a site's name (seeds its scanner and its participants' random streams)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "big")


def named_site(name: str, effect: float) -> Site:
    """The scanner of site ``name``: siteA's, moved by ``effect`` times a draw seeded by the name.

    Intensity scale, contrast, noise and bias strength change by up to
    ``effect`` times :data:`SITE_SPREAD` (multiplicatively), and grey matter
    is shifted by up to ``effect`` x 4 %, so datasets written with different
    site names differ as scanners do; ``effect`` 0 gives siteA's scanner.
    """
    draw = np.random.default_rng(site_code(name)).uniform(-1.0, 1.0, len(SITE_SPREAD))
    change = {key: float(d * effect * spread) for (key, spread), d in zip(SITE_SPREAD.items(), draw, strict=True)}
    reference = SITES["siteA"]
    return Site(name=name, manufacturer="Simulated", model=f"scanner of {name}",
                t1_scale=reference.t1_scale * (1 + change["t1_scale"]),
                t1_gamma=reference.t1_gamma * (1 + change["t1_gamma"]),
                t1_noise=reference.t1_noise * (1 + abs(change["t1_noise"])),
                bold_scale=reference.bold_scale * (1 + change["bold_scale"]),
                bold_noise=reference.bold_noise * (1 + abs(change["bold_noise"])),
                bias_spread=reference.bias_spread * (1 + abs(change["bias_spread"])),
                gm_offset=change["gm_offset"])


@dataclass(frozen=True)
class Participant:
    """One participant's phenotype; ``severity`` (0 for controls) scales the regional atrophy."""

    index: int
    age: float
    sex: str
    site: str
    group: str
    severity: float

    def label(self, width: int = 2) -> str:
        """BIDS label, zero-padded to ``width`` digits (``01``)."""
        return f"{self.index:0{width}d}"


def draw_participant(index: int, rng: np.random.Generator, site: str | None = None) -> Participant:
    """Draw participant ``index`` (1-based): age 20-80, sex, and a patient's severity 0.5-1.

    ``site`` puts every participant at that site; by default two participants
    in turn go to siteA and siteB.
    """
    group = "control" if index % 2 == 1 else "patient"
    if site is None:
        site = "siteA" if ((index - 1) // 2) % 2 == 0 else "siteB"
    age = round(float(rng.uniform(20.0, 80.0)), 1)
    sex = "M" if rng.random() < 0.5 else "F"
    severity = round(float(rng.uniform(0.5, 1.0)), 3) if group == "patient" else 0.0
    return Participant(index=index, age=age, sex=sex, site=site, group=group, severity=severity)

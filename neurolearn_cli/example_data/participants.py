"""Who is in the example dataset: demographics, group, site and atrophy severity.

Group and site follow the participant's index (control, patient, control,
patient, ... and two participants per site in turn), so any number of
participants is balanced and participant ``k`` is the same whatever the total.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Site:
    """A scanner: its name in the sidecars and how its images differ from the other site's.

    ``t1_gamma`` bends the T1w contrast, ``*_scale`` sets the stored intensity
    and ``*_noise`` the thermal noise, relative to the tissue signal.
    """

    name: str
    manufacturer: str
    model: str
    t1_scale: float
    t1_gamma: float
    t1_noise: float
    bold_scale: float
    bold_noise: float


SITES: dict[str, Site] = {
    "siteA": Site("siteA", "Siemens", "Prisma", 1000.0, 1.0, 0.025, 100.0, 0.012),
    "siteB": Site("siteB", "Philips", "Achieva dStream", 1450.0, 0.85, 0.04, 130.0, 0.016),
}


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


def draw_participant(index: int, rng: np.random.Generator) -> Participant:
    """Draw participant ``index`` (1-based): age 20-80, sex, and a patient's severity 0.5-1."""
    group = "control" if index % 2 == 1 else "patient"
    site = "siteA" if ((index - 1) // 2) % 2 == 0 else "siteB"
    age = round(float(rng.uniform(20.0, 80.0)), 1)
    sex = "M" if rng.random() < 0.5 else "F"
    severity = round(float(rng.uniform(0.5, 1.0)), 3) if group == "patient" else 0.0
    return Participant(index=index, age=age, sex=sex, site=site, group=group, severity=severity)

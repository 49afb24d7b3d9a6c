"""Colours shared by the report figures, so a tissue or a flag looks the same in every figure.

Tissue colours are matplotlib's tab10 (distinct for colour-blind readers in
luminance as well as hue); every figure that shows them carries a legend.
"""

from __future__ import annotations

#: Tissue classes in the order the figures list them, with their colours.
TISSUE_COLOURS = {"GM": "#2ca02c", "WM": "#1f77b4", "CSF": "#ff7f0e"}
#: A lesion (the dseg's label 4), apart from every tissue (tab10's pink).
LESION_COLOUR = "#e377c2"
#: Outline of a brain mask.
MASK_COLOUR = "#e41a1c"
#: Outline of the T1w white-matter boundary over a BOLD reference.
BOUNDARY_COLOUR = "#30ff30"
#: Values above a threshold (motion spikes, outliers) and the threshold line.
FLAG_COLOUR = "#d62728"
#: The white (GM/WM) and pial (GM/CSF) surfaces drawn over a T1w.
WHITE_SURFACE_COLOUR = "#3fa9ff"
PIAL_SURFACE_COLOUR = "#ff5a3c"
#: Cortical thickness maps (sequential, perceptually uniform).
THICKNESS_COLOURMAP = "viridis"
#: Time ranges left out of a figure's scaling (non-steady-state volumes).
EXCLUDED_COLOUR = "#bdbdbd"


def relative_luminance(rgb: tuple[float, float, float]) -> float:
    """WCAG 2 relative luminance of an sRGB colour with channels in [0, 1]."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: tuple[float, float, float], second: tuple[float, float, float]) -> float:
    """WCAG 2 contrast ratio of two sRGB colours (1 to 21; text wants at least 4.5)."""
    light, dark = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def text_colour_on(background: tuple[float, float, float]) -> str:
    """Black or white, whichever contrasts more with ``background``."""
    black = contrast_ratio(background, (0.0, 0.0, 0.0))
    white = contrast_ratio(background, (1.0, 1.0, 1.0))
    return "black" if black >= white else "white"

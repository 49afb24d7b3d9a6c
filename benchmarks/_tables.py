"""What the benchmark scripts share: markdown table cells and rows, and appending to ``RESULTS.md``.

The scripts import it as a sibling module (``python benchmarks/NAME.py`` puts
this folder first on ``sys.path``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("RESULTS.md")


def cell(value: Any) -> str:
    """A table cell: floats to 3 decimals, ranges as ``a to b``, missing or NaN as empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, (list, tuple)) and all(isinstance(v, float) for v in value):
        return " to ".join(f"{v:.3f}" for v in value)
    return str(value)


def markdown_table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], headers: Sequence[str] | None = None) -> str:
    """Markdown rows of ``columns`` (titled ``headers``, default the column names)."""
    titles = list(headers or columns)
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def append_results(text: str) -> None:
    """Append ``text`` to ``benchmarks/RESULTS.md``, atomically (a killed benchmark leaves it whole)."""
    from neurolearn_cli.atomic import write_text

    previous = RESULTS.read_text(encoding="utf-8") if RESULTS.is_file() else "# Benchmark results\n"
    write_text(RESULTS, previous.rstrip("\n") + "\n" + text.rstrip("\n") + "\n")

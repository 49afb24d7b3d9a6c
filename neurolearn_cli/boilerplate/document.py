"""The methods boilerplate as a document: titled sections of paragraphs, and numbered references.

One structure feeds both outputs: :meth:`Boilerplate.markdown` writes
``logs/CITATION.md``, and the HTML reports render the sections and
references from the same fields (through jinja2's autoescaping, so no
Markdown is ever turned into HTML by hand).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    """A titled part of the methods text (one per stage that ran)."""

    title: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class Boilerplate:
    """Sections and the references they cite (``[n]`` is ``references[n - 1]``)."""

    sections: tuple[Section, ...]
    references: tuple[str, ...]

    def markdown(self) -> str:
        """The text as Markdown: a heading per section, then the numbered references."""
        parts = ["# Methods"]
        for section in self.sections:
            parts += [f"## {section.title}", *section.paragraphs]
        if self.references:
            parts += ["## References", "\n".join(f"{n}. {ref}" for n, ref in enumerate(self.references, start=1))]
        return "\n\n".join(parts) + "\n"

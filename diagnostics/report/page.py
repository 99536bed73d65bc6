"""What the run report and the sweep report share: drawing their figures and the page's Jinja2
environment (templates/base.html holds the look, the figures section and the provenance block).

Each page keeps its own figure list and template; this module only runs them, so a figure
that cannot be drawn from its document is named on the page rather than left stale on disk.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ..io import atomic_write_bytes
from .style import png_bytes

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class FigureSpec:
    """One figure of a page: it declares the data it needs (select) apart from drawing it."""
    slug: str                            # file name figures/<slug>.png
    title: str                           # heading on the page
    caption: str                         # how to read it, in words
    select: Callable[..., "dict | str"]  # the page's document -> kwargs for draw, or why it is skipped
    draw: Callable
    # a figure of something the case did not ask for (figures 10 and 11 without
    # probe.sensitivity) is left off the page, not listed as "Not drawn"
    applies: Callable[..., bool] = lambda data: True


def draw_figures(specs: Iterable, data, folder: Path, caption: Callable = str) -> list[dict]:
    """Each spec's figure from `data` as figures/<slug>.png in folder, and the page's entry for
    it (embedded PNG, caption); a spec whose select() returns a reason gets a note instead, one
    that does not apply to this document none, and the PNG of either from an earlier render is
    removed (it would now mislead)."""
    out = []
    for spec in specs:
        png_path = folder / "figures" / f"{spec.slug}.png"
        if not spec.applies(data):
            png_path.unlink(missing_ok=True)
            continue
        sel = spec.select(data)
        if isinstance(sel, str):
            png_path.unlink(missing_ok=True)
            out.append({"spec": spec, "note": sel, "src": None})
            continue
        png = png_bytes(spec.draw(**sel))
        atomic_write_bytes(png_path, png)
        out.append({"spec": spec, "note": None, "file": f"figures/{spec.slug}.png", "caption": caption(spec.caption),
                    "src": "data:image/png;base64," + base64.b64encode(png).decode("ascii")})
    return out


def environment(*template_dirs: Path) -> Environment:
    """Autoescaping, strict environment that finds base.html after the caller's own templates."""
    return Environment(loader=FileSystemLoader([str(p) for p in (*template_dirs, TEMPLATES)]), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)

"""The docs site against the code: the reference pages are generated from it (docs/generate.py)
and must equal what is committed, a changed default fails here, and every link between pages
points at a page that exists."""
from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from diagnostics.cells import register_cell, unregister_cell
from diagnostics.cells.lstm import LSTM
from diagnostics.options import Finite, option

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _generator():
    spec = importlib.util.spec_from_file_location("docs_generate", DOCS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _generator()


@pytest.mark.parametrize("page", sorted(gen.PAGES))
def test_the_reference_page_is_what_the_code_says(page):
    assert (DOCS / page).read_text(encoding="utf-8") == gen.PAGES[page](), (
        f"docs/{page} differs from the code: run python docs/generate.py and commit the page")


def test_a_changed_default_fails_the_check(monkeypatch):
    """An LSTM whose forget bias defaults to 2.0 instead of 1.0: the committed cells page no
    longer says what the code does, and the check names the page."""
    @dataclass(frozen=True)
    class LSTM2(LSTM):
        forget_bias: Finite = option(2.0, "b_f at initialisation")
        kind: ClassVar[str] = "lstm"

    unregister_cell("lstm")
    try:
        register_cell(LSTM2)
        assert gen.stale() == ["reference/cells.md"]
        assert "| `forget_bias` | number | `2.0` |" in gen.cells_page()
    finally:
        unregister_cell("lstm")
        register_cell(LSTM)
    assert gen.stale() == []


def test_every_page_of_the_nav_exists_and_every_link_resolves():
    nav = re.findall(r":\s*([\w/.-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), re.M)
    assert nav and all((DOCS / p).is_file() for p in nav), [p for p in nav if not (DOCS / p).is_file()]
    for page in DOCS.rglob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).resolve().is_file(), f"{page.relative_to(ROOT)} links to {target}"

"""The examples of the README and of the docs site run as shown: their ```pycon blocks are
doctests (what they print is compared with what the page says they print), their ```python
blocks run, the fixture snippet of the CI tutorial runs as a test file of its own, and the
commands they name exist."""
from __future__ import annotations

import doctest
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
TEXT = "\n".join(p.read_text(encoding="utf-8") for p in PAGES)


def _blocks(lang: str) -> list[tuple[str, str]]:
    """(page, block) of every ```lang block of every page."""
    return [(str(p.relative_to(ROOT)), b) for p in PAGES
            for b in re.findall(rf"```{lang}\n(.*?)```", p.read_text(encoding="utf-8"), re.S)]


DOCTESTS = _blocks("pycon")
PYTHON = _blocks("python")
SCRIPTS = [(p, b) for p, b in PYTHON if "def test_" not in b]
FIXTURE = [b for _, b in PYTHON if "def test_" in b]
pytest_plugins = ["pytester"]


def _needs_torch(block: str) -> bool:
    return re.search(r"^\s*import torch|interop\.torch|torchfn", block, re.M) is not None


def test_readme_has_examples():
    assert any(p == "README.md" for p, _ in DOCTESTS) and len(DOCTESTS) >= 2 and SCRIPTS and len(FIXTURE) == 1


@pytest.mark.parametrize("i", range(len(DOCTESTS)), ids=[f"{p}:{i}" for i, (p, _) in enumerate(DOCTESTS)])
def test_readme_doctest(i, clean_registry, monkeypatch):
    monkeypatch.chdir(ROOT)
    page, block = DOCTESTS[i]
    test = doctest.DocTestParser().get_doctest(block, {"__name__": f"readme_{i}"}, f"{page} pycon {i}", page, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out: list[str] = []
    runner.run(test, out=out.append)
    assert runner.failures == 0 and runner.tries > 3, "".join(out)


@pytest.mark.parametrize("i", range(len(SCRIPTS)), ids=[f"{p}:{i}" for i, (p, _) in enumerate(SCRIPTS)])
def test_readme_block_runs(i, clean_registry, capsys, monkeypatch):
    page, block = SCRIPTS[i]
    if _needs_torch(block):
        pytest.importorskip("torch")
    monkeypatch.chdir(ROOT)
    exec(compile(block, f"{page} python {i}", "exec"), {"__name__": f"readme_{i}"})
    out = capsys.readouterr().out
    # a block states what it prints in a comment on the print line or the line after it
    said_lines = re.findall(r"^# (\S.*)$", block, re.M)
    said_lines += re.findall(r"print\(.*\)\s+# ([-\[(\d].*)$", block, re.M)
    assert said_lines or "print(" not in block, "a block that prints says what it prints"
    for said in said_lines:
        numbers = re.findall(r"-?\d+\.\d+(?:e[+-]\d+)?", said.split(":")[0])
        for num in numbers:
            assert num in out, (num, said, out)


@pytest.mark.slow
def test_readme_fixture_snippet_runs_as_written(pytester):
    """The fixture example is a complete test file: --diag-update writes its baselines, then a
    plain run passes against them (it once failed with NameError: cell)."""
    tests = pytester.path / "tests"
    tests.mkdir()
    (tests / "test_mine.py").write_text(FIXTURE[0], encoding="utf-8")
    (pytester.path / "cases").mkdir()
    shutil.copy(ROOT / "cases" / "quickstart.yaml", pytester.path / "cases" / "quickstart.yaml")
    first = pytester.runpytest_subprocess(str(tests), "--diag-update", "-p", "no:cacheprovider")
    first.assert_outcomes(passed=2)
    assert (tests / "test_mine" / "test_my_lstm.json").is_file()
    again = pytester.runpytest_subprocess(str(tests), "-p", "no:cacheprovider")
    again.assert_outcomes(passed=2)


def test_readme_commands_exist():
    from click.testing import CliRunner

    from diagnostics.cli.main import main
    for cmd in set(re.findall(r"`diag (\w+)", TEXT)):
        assert CliRunner().invoke(main, [cmd, "--help"]).exit_code == 0, cmd
    assert "diag run cases/quickstart.yaml" in TEXT and (ROOT / "cases" / "quickstart.yaml").exists()
    assert sys.version_info >= (3, 10)

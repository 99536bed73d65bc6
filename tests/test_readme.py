"""The README's examples run as shown: its ```pycon blocks are doctests (what they print is
compared with what the README says they print), its ```python blocks run, the fixture snippet
runs as a test file of its own, and the commands it names exist."""
from __future__ import annotations

import doctest
import re
import shutil
import sys
from pathlib import Path

import pytest

from diagnostics.cells import cell_kinds, unregister_cell

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TEXT = README.read_text(encoding="utf-8")
DOCTESTS = re.findall(r"```pycon\n(.*?)```", TEXT, re.S)
PYTHON = re.findall(r"```python\n(.*?)```", TEXT, re.S)
SCRIPTS = [b for b in PYTHON if "def test_" not in b]
FIXTURE = [b for b in PYTHON if "def test_" in b]
pytest_plugins = ["pytester"]


def _needs_torch(block: str) -> bool:
    return re.search(r"^\s*import torch|interop\.torch|torchfn", block, re.M) is not None


def _clean_registry():
    before = set(cell_kinds())
    yield
    for k in set(cell_kinds()) - before:
        unregister_cell(k)


clean_registry = pytest.fixture(_clean_registry)


def test_readme_has_examples():
    assert len(DOCTESTS) >= 2 and SCRIPTS and len(FIXTURE) == 1


@pytest.mark.parametrize("i", range(len(DOCTESTS)))
def test_readme_doctest(i, clean_registry, monkeypatch):
    monkeypatch.chdir(ROOT)
    test = doctest.DocTestParser().get_doctest(DOCTESTS[i], {"__name__": f"readme_{i}"}, f"README pycon {i}",
                                               str(README), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out: list[str] = []
    runner.run(test, out=out.append)
    assert runner.failures == 0 and runner.tries > 3, "".join(out)


@pytest.mark.parametrize("i", range(len(SCRIPTS)))
def test_readme_block_runs(i, clean_registry, capsys, monkeypatch):
    if _needs_torch(SCRIPTS[i]):
        pytest.importorskip("torch")
    monkeypatch.chdir(ROOT)
    exec(compile(SCRIPTS[i], f"README python {i}", "exec"), {"__name__": f"readme_{i}"})
    out = capsys.readouterr().out
    # a block states what it prints in a comment on the print line or the line after it
    said_lines = re.findall(r"^# (\S.*)$", SCRIPTS[i], re.M)
    said_lines += re.findall(r"print\(.*\)\s+# ([-\[(\d].*)$", SCRIPTS[i], re.M)
    assert said_lines or "print(" not in SCRIPTS[i], "a block that prints says what it prints"
    for said in said_lines:
        numbers = re.findall(r"-?\d+\.\d+(?:e[+-]\d+)?", said.split(":")[0])
        for num in numbers:
            assert num in out, (num, said, out)


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

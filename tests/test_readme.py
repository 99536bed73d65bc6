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
# pages whose blocks build on each other (one namespace, in order): the tests named here run
# them as a reader would, so they are not run one at a time below
RUN_IN_ORDER_BY = {"docs/tutorials/monitor.md": ("test_monitor_integrations.py", "test_monitor_models.py")}
SCRIPTS = [(p, b) for p, b in PYTHON if "def test_" not in b and p not in RUN_IN_ORDER_BY]
FIXTURE = [b for _, b in PYTHON if "def test_" in b]
pytest_plugins = ["pytester"]


def _needs(block: str) -> list[str]:
    """The optional packages a block imports (its test skips cleanly without them)."""
    torch = re.search(r"^\s*import torch|interop\.torch|torchfn", block, re.M) is not None
    return ["torch"] * torch + [m for m in ("transformers", "lightning")
                                if re.search(rf"^\s*(import|from) {m}\b", block, re.M)]


def _in_a_copy_of_the_tree(tmp_path: Path) -> Path:
    """tmp_path with the repository's folders linked in: a block reads cases/ or examples/ as
    the page says, and what it writes (a monitor's out/, a report) lands in tmp_path, never in
    the repository."""
    for d in ROOT.iterdir():
        if d.is_dir() and not d.name.startswith("."):
            (tmp_path / d.name).symlink_to(d, target_is_directory=True)
    return tmp_path


def test_readme_has_examples():
    assert any(p == "README.md" for p, _ in DOCTESTS) and len(DOCTESTS) >= 2 and SCRIPTS and FIXTURE


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
def test_readme_block_runs(i, clean_registry, capsys, monkeypatch, tmp_path):
    page, block = SCRIPTS[i]
    for module in _needs(block):
        pytest.importorskip(module)
    monkeypatch.chdir(_in_a_copy_of_the_tree(tmp_path))
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
@pytest.mark.parametrize("i", range(len(FIXTURE)), ids=[f"fixture{i}" for i in range(len(FIXTURE))])
def test_readme_fixture_snippet_runs_as_written(pytester, i):
    """Each fixture example is a complete test file, named in its first line: --diag-update
    writes its baselines, then a plain run passes against them (one once failed with NameError:
    cell)."""
    block = FIXTURE[i]
    for module in _needs(block):
        pytest.importorskip(module)
    name = re.match(r"# tests/(test_\w+)\.py\n", block).group(1)
    tests = pytester.path / "tests"
    tests.mkdir()
    (tests / f"{name}.py").write_text(block, encoding="utf-8")
    (pytester.path / "cases").mkdir()
    shutil.copy(ROOT / "cases" / "quickstart.yaml", pytester.path / "cases" / "quickstart.yaml")
    n = len(re.findall(r"^def test_", block, re.M))
    first = pytester.runpytest_subprocess(str(tests), "--diag-update", "-p", "no:cacheprovider")
    first.assert_outcomes(passed=n)
    assert len(list((tests / name).glob("test_*.json"))) == n
    again = pytester.runpytest_subprocess(str(tests), "-p", "no:cacheprovider")
    again.assert_outcomes(passed=n)


def test_pages_run_in_order_are_run_by_the_tests_named():
    for page, tests in RUN_IN_ORDER_BY.items():
        assert any(p == page for p, _ in PYTHON), page
        for t in tests:
            assert page in (ROOT / "tests" / t).read_text(encoding="utf-8").replace('" / "', "/"), (page, t)


def test_readme_commands_exist():
    from click.testing import CliRunner

    from diagnostics.cli.main import main
    for cmd in set(re.findall(r"`diag (\w+)", TEXT)):
        assert CliRunner().invoke(main, [cmd, "--help"]).exit_code == 0, cmd
    assert "diag run cases/quickstart.yaml" in TEXT and (ROOT / "cases" / "quickstart.yaml").exists()
    assert sys.version_info >= (3, 10)

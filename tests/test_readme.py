"""The README's Python examples run as shown (the fixture snippet is exercised by
test_regression_plugin.py, so blocks that define tests are skipped here)."""
import re
from pathlib import Path

import pytest

from diagnostics.cells import cell_kinds, unregister_cell

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "def test_" not in b]


def test_readme_has_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_block_runs(i, capsys):
    if "import torch" in BLOCKS[i]:   # PyTorch is an optional extra
        pytest.importorskip("torch")
    before = set(cell_kinds())
    try:
        exec(compile(BLOCKS[i], f"README block {i}", "exec"), {"__name__": f"readme_{i}"})
    finally:
        for k in set(cell_kinds()) - before:
            unregister_cell(k)
    out = capsys.readouterr().out
    assert out.strip(), "each README example prints what it shows"
    if "check_jacobian" in BLOCKS[i]:
        assert "ok=True" in out


def test_readme_commands_exist():
    from click.testing import CliRunner
    from diagnostics.cli import main
    text = README.read_text()
    for cmd in re.findall(r"`diag (\w+)", text):
        assert CliRunner().invoke(main, [cmd, "--help"]).exit_code == 0, cmd
    assert "diag run cases/quickstart.yaml" in text
    assert (README.parent / "cases" / "quickstart.yaml").exists()

"""The folders the commands write: only their own are replaced (or written into), and a
replacement is whole or not at all, a full disk included. Each refusal is exit 2 with one
line naming the folder, before anything is computed; the folder is left byte for byte."""
from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sweep_helpers import write_sweep

from diagnostics import publish
from diagnostics.cli.main import main
from diagnostics.documents import RUN, SWEEP, SWEEP_RUN


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def case_file(tmp_path, tiny_case, write_case) -> Path:
    """The tiny case (conftest.py) as tmp_path/tiny.yaml."""
    return write_case(tmp_path, tiny_case(), "tiny.yaml")


def tree(folder: Path) -> dict:
    """Every entry below `folder` (hidden ones included): a file's bytes, a link's target,
    None for a folder."""
    return {p.relative_to(folder).as_posix(): (str(p.readlink()) if p.is_symlink() else
                                               p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def errors(res) -> list[str]:
    return [line for line in res.stderr.splitlines() if line.startswith("error:")]


@pytest.fixture
def no_compute(monkeypatch):
    """A refusal comes before any compute: a run that gets that far fails the test (and, on
    code without the refusal, writes nothing)."""
    import diagnostics.run.runner as runner

    def compute(*a, **k):
        raise AssertionError("computed before the folder was checked")
    monkeypatch.setattr(runner, "compute", compute)


# --- whose folder it is ----------------------------------------------------------------------

def _json(path: Path, doc) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


LEGACY_SWEEP_RUN = {"sweep": "s", "quick": False, "points": 4, "ran": 4, "versions": {"python": "3.11"}}
POINT_ERROR = {"point": 1, "values": {}, "case": {}, "type": "RuntimeError", "message": "boom", "traceback": ""}


def _make(folder: Path, layout: str) -> None:
    """The folders refusal() tells apart, by name."""
    folder.mkdir(parents=True)
    if layout == "run":
        _json(folder / "run.json", {"format": RUN})
        (folder / "curves.json").write_text("{}")
    elif layout == "later run":
        _json(folder / "run.json", {"format": "diag-run/2"})
    elif layout == "leftovers":
        (folder / ".curves.json.0123456789ab.tmp").write_text("half")
        (folder / ".figures.staging-0123456789ab").mkdir()
    elif layout == "sweep":
        _json(folder / "sweep-run.json", {"format": SWEEP_RUN, "sweep": "s"})
        (folder / "points").mkdir()
    elif layout == "sweep of an earlier version":
        _json(folder / "sweep-run.json", LEGACY_SWEEP_RUN)
    elif layout == "sweep killed before sweep-run.json":
        _json(folder / "sweep.json", {"format": SWEEP})
    elif layout == "sweep killed before sweep.json":
        _json(folder / "points" / "a1" / "run.json", {"format": RUN})
        _json(folder / "points" / "b2" / "error.json", POINT_ERROR)
        (folder / "points" / ".c3.staging-0123456789ab").mkdir()
    elif layout == "user's files":
        (folder / "thesis.tex").write_text("chapter 1")
        _json(folder / "sub" / "data.csv", [1, 2])
    elif layout == "user's run.json":
        _json(folder / "run.json", {"format": "my-own/1", "steps": 3})
    elif layout == "user's run.json, not JSON":
        (folder / "run.json").write_text("run: fast\n")
    elif layout == "user's files in points/":
        _json(folder / "points" / "a1" / "run.json", {"format": RUN})
        (folder / "points" / "notes.txt").write_text("mine")
    elif layout == "empty":
        pass
    else:
        raise ValueError(layout)


OURS = [("empty", "run"), ("run", "run"), ("later run", "run"), ("leftovers", "run"), ("empty", "sweep"),
        ("sweep", "sweep"), ("sweep of an earlier version", "sweep"), ("sweep killed before sweep-run.json", "sweep"),
        ("sweep killed before sweep.json", "sweep"), ("leftovers", "sweep")]
NOT_RUN, NOT_SWEEP = "not written by diag (no run.json naming its format)", \
    "not written by diag (no sweep-run.json naming its format)"
THEIRS = [("user's files", "run", f"holds sub/, thesis.tex, {NOT_RUN}"),
          ("user's run.json", "run", f"holds run.json, {NOT_RUN}"),
          ("user's run.json, not JSON", "run", f"holds run.json, {NOT_RUN}"),
          ("sweep", "run", "holds a sweep written by diag, not a run"),
          ("run", "sweep", "holds a run written by diag, not a sweep"),
          ("user's files", "sweep", f"holds sub/, thesis.tex, {NOT_SWEEP}"),
          ("user's files in points/", "sweep", f"holds points/, {NOT_SWEEP}")]


@pytest.mark.parametrize("layout, kind", OURS, ids=[f"{k}: {lay}" for lay, k in OURS])
def test_a_folder_of_its_own_may_be_written(tmp_path, layout, kind):
    _make(tmp_path / "x", layout)
    assert publish.refusal(tmp_path / "x", kind) is None


@pytest.mark.parametrize("layout, kind, says", THEIRS, ids=[f"{k}: {lay}" for lay, k, _ in THEIRS])
def test_a_folder_it_did_not_write_is_refused_naming_what_it_holds(tmp_path, layout, kind, says):
    _make(tmp_path / "x", layout)
    assert publish.refusal(tmp_path / "x", kind) == f"{tmp_path / 'x'}: {says}" + (
        "; left untouched (choose another --out)" if "written by diag, not" in says else
        "; left untouched (move them away or choose another --out)")


def test_the_sweep_run_document_names_the_format_its_folder_is_known_by(tmp_path):
    from diagnostics.sweep.engine import Outcome
    from diagnostics.sweep.grid import load_sweep
    from diagnostics.sweep.runinfo import sweep_run_document
    sweep = load_sweep(write_sweep(tmp_path / "files"))
    doc = sweep_run_document(sweep, tmp_path / "out", Outcome(total=4, skipped=0), 1.0)
    assert doc.format == SWEEP_RUN
    _json(tmp_path / "out" / "sweep-run.json", doc.to_data())
    assert publish.what_it_is(tmp_path / "out") == "sweep"


# --- diag run and diag sweep refuse, before anything runs -------------------------------------------

def test_run_refuses_a_folder_of_the_users_files(tmp_path, case_file):
    """It used to remove out/tiny/ with thesis.tex and sub/data.csv in it, exit 0, no message."""
    out = tmp_path / "out"
    _make(out / "tiny", "user's files")
    (out / "notes.txt").write_text("beside it")
    before = tree(out)
    res = invoke("run", case_file, "--out", out, "--no-report")
    assert res.exit_code == 2, res.stderr
    assert errors(res) == [f"error: {out / 'tiny'}: holds sub/, thesis.tex, not written by diag "
                           "(no run.json naming its format); left untouched (move them away or choose another --out)"]
    assert tree(out) == before


@pytest.mark.parametrize("what", ["file", "link"])
def test_run_refuses_a_file_or_a_link_of_the_folders_name(tmp_path, what, case_file):
    """A file named like the case's folder was renamed to a hidden staging name; a link
    was replaced by a folder."""
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    _make(elsewhere, "run")
    if what == "file":
        (out / "tiny").write_text("my notes")
    else:
        (out / "tiny").symlink_to(elsewhere)
    before, theirs = tree(out), tree(elsewhere)
    res = invoke("run", case_file, "--out", out, "--no-report")
    assert res.exit_code == 2, res.stderr
    says = "exists and is not a folder" if what == "file" else "is a symbolic link"
    assert errors(res) == [f"error: {out / 'tiny'}: {says}; left untouched"]
    assert tree(out) == before and tree(elsewhere) == theirs


@pytest.mark.parametrize("where", ["root", "home"])
def test_run_refuses_the_root_and_the_home_folder(tmp_path, monkeypatch, no_compute, where, case_file):
    """`--out /` wrote /tiny (the issue's /fast)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    out = Path("/") if where == "root" else home
    res = invoke("run", case_file, "--out", out, "--no-report")
    assert res.exit_code == 2, res.stderr
    place = "the file system's root" if where == "root" else "your home folder"
    assert errors(res) == [f"error: {out}: is {place}; refusing to write tiny/ into it "
                           "(give the reports a folder of their own, e.g. --out reports)"]
    assert list(home.iterdir()) == []


def test_run_checks_every_case_before_running_any(tmp_path, no_compute, case_file, tiny_case, write_case):
    out = tmp_path / "out"
    _make(out / "other", "user's files")
    first = case_file
    second = write_case(tmp_path, tiny_case(name="other"), "other.yaml")
    before = tree(out)
    res = invoke("run", first, second, "--out", out, "--no-report")
    assert res.exit_code == 2 and len(errors(res)) == 1 and str(out / "other") in errors(res)[0]
    assert tree(out) == before


def test_run_replaces_its_own_folder_and_one_holding_only_its_leftovers(tmp_path, case_file):
    out = tmp_path / "out"
    _make(out / "tiny", "leftovers")
    assert invoke("run", case_file, "--out", out, "--no-report").exit_code == 0
    assert sorted(tree(out / "tiny")) == ["curves.json", "run.json"]
    assert invoke("run", case_file, "--out", out, "--no-report").exit_code == 0
    assert [p.name for p in out.iterdir()] == ["tiny"]


@pytest.mark.parametrize("layout", ["user's files", "run"])
def test_sweep_refuses_a_folder_not_its_own_before_the_cluster_starts(tmp_path, monkeypatch, layout):
    """A sweep writes into OUT/<name>/ (points/, sweep.json, the page): never into a folder of
    the user's, nor a run's."""
    import diagnostics.sweep.run as sweep_run

    def run_points(*a, **k):
        raise AssertionError("the points ran")
    monkeypatch.setattr(sweep_run, "run_points", run_points)
    out = tmp_path / "out"
    _make(out / "tiny-sweep", layout)
    before = tree(out)
    res = invoke("sweep", write_sweep(tmp_path / "files"), "--out", out, "--no-report")
    assert res.exit_code == 2, res.stderr
    assert len(errors(res)) == 1 and errors(res)[0].startswith(f"error: {out / 'tiny-sweep'}: holds ")
    assert "==" not in res.stderr      # refused before the sweep started
    assert tree(out) == before


# --- whole or not at all: a full disk ------------------------------------------------------------

@pytest.fixture(scope="module")
def report_folder(tmp_path_factory, tiny_case, write_case) -> Path:
    """A run folder with its page, made once (copied by each test)."""
    root = tmp_path_factory.mktemp("made")
    res = CliRunner().invoke(main, ["run", str(write_case(root, tiny_case(), "tiny.yaml")), "--out", str(root / "out")])
    assert res.exit_code == 0, res.stderr
    return root / "out" / "tiny"


def _disk_fills(monkeypatch, module, name: str, after: int) -> list:
    """Writes through module.<name> succeed `after` times, then fail as on a full disk."""
    real, calls = getattr(module, name), []

    def write(path, data):
        calls.append(Path(path))
        if len(calls) > after:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)
    monkeypatch.setattr(module, name, write)
    return calls


def test_a_full_disk_while_the_page_is_drawn_leaves_the_previous_folder_whole(tmp_path, monkeypatch,
                                                                                report_folder, case_file):
    """The issue's 3 MB tmpfs: exit 1 with the previous index.html and figures gone. Now exit 1,
    one line, and the previous folder byte for byte (no staging folder left beside it)."""
    import diagnostics.report.page as page
    out = tmp_path / "out"
    shutil.copytree(report_folder, out / "tiny")
    before = tree(out)
    calls = _disk_fills(monkeypatch, page, "atomic_write_bytes", after=1)
    res = invoke("run", case_file, "--out", out)
    assert len(calls) == 2                     # the second figure met the full disk
    assert res.exit_code == 1, res.stderr
    assert errors(res) == [f"error: {tmp_path / 'tiny.yaml'}: run failed: OSError: [Errno 28] No space left on "
                           f"device; {out / 'tiny'} is as it was (set DIAG_DEBUG=1 for the traceback)"]
    assert tree(out) == before


def test_a_full_disk_while_the_overlays_of_a_regression_are_drawn_leaves_the_folder_whole(tmp_path, monkeypatch, case_file):
    """The overlays of a regression were drawn into the folder after it was swapped in: a full
    disk then left the new folder in place (and no table of what moved) while saying the run
    failed. Now they are drawn in the stage: exit 1, the previous folder byte for byte, and the
    comparison table still printed."""
    import diagnostics.regression.overlay as overlay
    case = case_file
    out = tmp_path / "out"
    assert invoke("run", case, "--out", out, "--no-report", "--update-baseline").exit_code == 0
    base = tmp_path / "baselines" / "tiny.json"
    doc = json.loads(base.read_text())
    doc["series"][0]["log10"]["median"][3] += 1.0               # the baseline says one point moved
    base.write_text(json.dumps(doc, indent=1))
    before = tree(out)
    calls = _disk_fills(monkeypatch, overlay, "atomic_write_bytes", after=0)
    res = invoke("run", case, "--out", out, "--no-report")
    assert calls and res.exit_code == 1, res.output
    assert errors(res) == [f"error: {case}: run failed: OSError: [Errno 28] No space left on device; "
                           f"{out / 'tiny'} is as it was (set DIAG_DEBUG=1 for the traceback)"]
    assert "REGRESSION against" in res.stdout and "FAIL" in res.stdout
    assert tree(out) == before
    monkeypatch.undo()
    res = invoke("run", case, "--out", out, "--no-report")      # with room: the overlays are in the folder
    assert res.exit_code == 1 and "overlays: " + str(out / "tiny" / "regression") in res.stdout, res.stdout
    assert list((out / "tiny" / "regression").glob("*.png"))


@pytest.mark.slow
def test_a_full_disk_while_diag_report_draws_again_leaves_the_folder_whole(tmp_path, monkeypatch, report_folder):
    """`diag report` rewrote the figures one by one in place: a failure at the page left new
    figures beside the old index.html (and a traceback)."""
    import diagnostics.report.html as html
    run_dir = tmp_path / "tiny"
    shutil.copytree(report_folder, run_dir)
    (run_dir / "figures" / "decay.png").unlink()    # drawn again first: a partial redraw shows
    before = tree(tmp_path)
    _disk_fills(monkeypatch, html, "atomic_write_text", after=0)
    res = invoke("report", run_dir)
    assert res.exit_code == 1
    assert errors(res) == [f"error: {run_dir}: report failed: OSError: [Errno 28] No space left on device; "
                           "the folder is as it was"]
    assert tree(tmp_path) == before
    monkeypatch.undo()
    assert invoke("report", run_dir).exit_code == 0 and (run_dir / "figures" / "decay.png").is_file()


def test_a_folder_of_its_own_in_the_home_folder_may_be_replaced(tmp_path, monkeypatch):
    """Only a new folder is refused there: `diag report ~/tiny` draws its own run again."""
    monkeypatch.setenv("HOME", str(tmp_path))
    _make(tmp_path / "tiny", "run")
    assert publish.refusal(tmp_path / "tiny") is None
    assert publish.refusal(tmp_path / "other").startswith(f"{tmp_path}: is your home folder")

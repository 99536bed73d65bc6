"""diagnostics/io.py: an atomic write gets the mode of a plain open, and never changes the
umask to find it."""
from __future__ import annotations

from diagnostics.io import atomic_write_bytes


def test_atomic_writes_get_the_mode_of_a_plain_open(tmp_path, umask, forbid_umask):
    plain = tmp_path / "plain.json"
    plain.write_bytes(b"{}")
    forbid_umask()
    atomic_write_bytes(tmp_path / "atomic.json", b"{}")
    mode = (tmp_path / "atomic.json").stat().st_mode & 0o777
    assert mode == plain.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["atomic.json", "plain.json"]

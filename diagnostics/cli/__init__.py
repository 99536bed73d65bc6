"""The `diag` command (the console script `diag = diagnostics.cli:main`).

    main.py    the group and `diag run`, `validate`, `list`, `new`, `report`, `schema`
    check.py   `diag check`: two curves.json files or run folders, or two sweeps
    sweep.py   `diag sweep`

Every command turns a project error into one line on stderr and exit 2 (errors.fail).
"""
from .main import main

__all__ = ["main"]
